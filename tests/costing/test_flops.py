"""FLOP accounting: paper formulas, budget <-> pairs, and the exact meter against FlopCounterMode."""

from __future__ import annotations

import copy

import pytest

from st_recipe import StRecipeError, get_method
from st_recipe.costing.flops import (
    FlopMeter,
    budget_for_pairs,
    lengths_from_mask,
    pairs_for_budget,
    paper_flops_per_token,
    profile_model,
)
from st_recipe.models.catalog import CATALOG, get_spec

METHODS = [
    ("full", {}),
    ("freeze", {"blocks": 1}),
    ("bias", {}),
    ("lora", {"r": 8}),
    ("propulsion", {}),
    ("peft", {"peft_type": "ia3"}),
]
ANCHORS = ["a query about rivers", "how do cats sleep", "the price of bread", "what is an embedding"]
POSITIVES = ["Rivers flow from the mountains to the sea and carry water.", "Cats sleep most of the day in warm places.",
             "Bread costs more when wheat harvests fail.", "An embedding maps a text to a vector of numbers."]


@pytest.mark.parametrize("name, n, nt, expected", [
    ("full", 100, 100, 600), ("freeze", 100, 10, 240), ("bias", 100, 1, 402), ("lora", 100, 5, 410),
    ("propulsion", 100, 1, 402), ("peft", 100, 2, 404),
])
def test_paper_per_token_costs(name, n, nt, expected):
    assert paper_flops_per_token(name, n, nt) == expected


@pytest.mark.parametrize("budget", [1.5e15, 6e15, 2.4e16, 9.6e16, 3.84e17, 1.536e18])
def test_pairs_follow_the_paper_formula(budget):
    spec = get_spec("pythia-160m")
    pairs = pairs_for_budget(budget, 6 * spec.n_params)
    assert pairs == int(budget // (6 * spec.n_params * 78))
    assert budget_for_pairs(pairs, 6 * spec.n_params) <= budget < budget_for_pairs(pairs + 1, 6 * spec.n_params)


@pytest.mark.parametrize("bad", ["abc", -1, 0, float("nan"), float("inf"), None])
def test_bad_budgets(bad):
    with pytest.raises(StRecipeError, match="budget"):
        pairs_for_budget(bad, 1.0)


def _measure(model, anchors, positives):
    """FLOPs that torch counts for one forward+backward of a symmetric InfoNCE step."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    fa, fp = model.preprocess(anchors), model.preprocess(positives)
    counter = FlopCounterMode(display=False)
    with counter:
        ea = model(dict(fa))["sentence_embedding"]
        ep = model(dict(fp))["sentence_embedding"]
        scores = torch.nn.functional.normalize(ea, dim=-1) @ torch.nn.functional.normalize(ep, dim=-1).T * 40
        labels = torch.arange(len(anchors))
        loss = torch.nn.functional.cross_entropy(scores, labels) + torch.nn.functional.cross_entropy(scores.T, labels)
        loss.backward()
    return counter.get_total_flops(), [lengths_from_mask(fa["attention_mask"]), lengths_from_mask(fp["attention_mask"])]


@pytest.fixture(scope="module")
def shapes(tiny_neox_dir, tiny_llama_dir, tiny_qwen_dir):
    from st_recipe import build_encoder

    # Eager attention, so the attention-score matmuls are visible to FlopCounterMode on CPU.
    kwargs = {"attn_implementation": "eager"}
    return {
        "tiny": build_encoder(str(tiny_neox_dir), model_kwargs=kwargs),
        "pythia-14m": build_encoder("random:pythia-14m", model_kwargs=kwargs),
        # Gated MLPs, grouped-query attention, no biases (Llama) or q/k/v biases and tied embeddings (Qwen2).
        "tiny-llama": build_encoder(str(tiny_llama_dir), model_kwargs=kwargs),
        "tiny-qwen2": build_encoder(str(tiny_qwen_dir), model_kwargs=kwargs),
    }


@pytest.mark.parametrize("shape", ["tiny", "pythia-14m", "tiny-llama", "tiny-qwen2"])
@pytest.mark.parametrize("name, args", METHODS)
def test_exact_meter_matches_flop_counter(shapes, shape, name, args):
    if name == "bias" and shape == "tiny-llama":
        pytest.skip("Llama has no biases: bias-only tuning is refused there (tested in tests/methods)")
    model = copy.deepcopy(shapes[shape])
    method = get_method(name, **args)
    report = method.apply(model)
    profile = profile_model(model)

    # Equal lengths: no padding, so real tokens are exactly what is computed.
    same = [" ".join(["word"] * 9)] * 4
    measured, lengths = _measure(model, same, [s + " more" for s in same])
    metered = FlopMeter(profile).batch_flops(lengths)
    assert abs(metered / measured - 1) <= 0.02, (metered, measured)

    # Ragged texts: the padded meter matches what the hardware computed...
    measured, lengths = _measure(model, ANCHORS, POSITIVES)
    padded = FlopMeter(profile, count_padding=True).batch_flops(lengths)
    assert abs(padded / measured - 1) <= 0.02, (padded, measured)
    # ...and the default meter counts only real tokens, so it is lower on a padded batch.
    assert FlopMeter(profile).batch_flops(lengths) < padded
    tokens = sum(sum(s) for s in lengths)
    paper = paper_flops_per_token(method, report.n_params, report.n_trainable) * tokens
    assert paper > 0


def test_profile_skips_backward_through_frozen_blocks(shapes):
    full = copy.deepcopy(shapes["pythia-14m"])
    get_method("full").apply(full)
    frozen = copy.deepcopy(shapes["pythia-14m"])
    get_method("freeze", blocks=2).apply(frozen)
    pf, pz = profile_model(full), profile_model(frozen)
    assert pf.forward_per_token == pz.forward_per_token
    assert pz.backward_per_token == pytest.approx(pf.backward_per_token * 2 / 6, rel=1e-6)
    assert pz.layers_with_grad == 2 and pf.layers_with_grad == 6


def test_meter_accumulates_and_round_trips_state():
    from st_recipe.costing.flops import CostProfile

    prof = CostProfile(forward_per_token=2.0, backward_per_token=4.0, attention_forward=1.0, attention_backward=2.0,
                       matmul_weights=1, layers_with_grad=1, layers=1)
    meter = FlopMeter(prof)
    assert meter.add([[2, 3], [4]]) == 6 * 9 + 3 * (4 + 9 + 16)
    state = meter.state_dict()
    again = FlopMeter(prof)
    again.load_state_dict(state)
    assert again.flops == meter.flops and again.tokens == 9 and again.sequences == 3


def test_catalogue_counts_equal_the_real_module_tree():
    # The closed form L(12h² + 13h) + 2h against GPT-NeoX built from each published config on the meta device.
    from st_recipe.models.config import catalogue_config
    from st_recipe.models.meta import meta_counts

    for spec in CATALOG.values():
        n, nt, report = meta_counts(catalogue_config(spec), get_method("full"))
        assert (n, nt) == (spec.n_params, spec.n_params), spec.name
        assert report.n_params_all == spec.n_params + spec.vocab_size * spec.hidden_size, spec.name
