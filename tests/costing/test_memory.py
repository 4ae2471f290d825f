"""Memory estimate: parse/format, the per-method activation rule, and the peak's structure."""

from __future__ import annotations

import pytest

from st_recipe.costing.memory import activation_rule, estimate_memory, format_bytes, parse_memory
from st_recipe.costing.pricing import param_counts
from st_recipe.errors import StRecipeError
from st_recipe.methods import get_method
from st_recipe.methods.peft_tuners import Peft
from st_recipe.models.catalog import get_spec

SPEC = get_spec("pythia-70m")
H = SPEC.hidden_size
KW = dict(batch_size=16, max_seq_length=75)


def peft_method(peft_type: str, **options: object) -> Peft:
    """A ``peft`` method without its validation (which imports peft, ~5 s); the estimate reads only its fields."""
    method = object.__new__(Peft)
    method.peft_type, method.options, method.config = peft_type, dict(options), None
    return method


def method(name: str, **args: object):
    if name == "peft":
        return peft_method(str(args["peft_type"]), **dict(args.get("options", {})))  # type: ignore[arg-type]
    return get_method(name, **args)


def est(name: str, **args: object):
    return estimate_memory(SPEC, method(name, **args), **KW)


@pytest.mark.parametrize("text, expected", [("24GB", 24 * 2**30), ("24GiB", 24 * 2**30), ("512MB", 512 * 2**20),
                                            ("1.5T", int(1.5 * 2**40)), (1024, 1024)])
def test_parse_memory(text: object, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("bad", ["abc", "-1GB", "0", "12 parsecs"])
def test_parse_memory_rejects(bad: str) -> None:
    with pytest.raises(StRecipeError):
        parse_memory(bad)


def test_format_bytes() -> None:
    assert format_bytes(1.5 * 2**30) == "1.5 GiB"
    assert format_bytes(100) == "100 B"


@pytest.mark.parametrize("name, args, per_layer_h", [
    ("full", {}, 18),  # 10h + 2f: every linear input + norm input, attention, GELU input
    ("freeze", {"blocks": 1}, 18),
    ("bias", {}, 11),  # 7h + f: no weight gradients, no linear inputs
    ("propulsion", {}, 20),  # bias's set + every scaled output V: 12h + 2f
    ("peft", {"peft_type": "ia3"}, 18),  # bias's set + scaled qkv output and GELU output
    ("peft", {"peft_type": "loha"}, 27),  # heuristic: linear inputs and outputs
])
def test_activation_rule_per_method(name: str, args: dict, per_layer_h: int) -> None:
    rule = activation_rule(SPEC, method(name, **args))
    assert rule.per_layer == per_layer_h * H + SPEC.num_heads  # + one log-sum-exp per head


def test_lora_rule_adds_rank_intermediates_dora_outputs_and_dropout_masks() -> None:
    full = activation_rule(SPEC, get_method("full")).per_layer
    lora = activation_rule(SPEC, get_method("lora", r=32))
    assert lora.per_layer == full + 4 * 32
    assert lora.mask_bytes_per_layer == 0
    assert activation_rule(SPEC, get_method("lora", r=32, use_dora=True)).per_layer == lora.per_layer + 18 * H
    assert activation_rule(SPEC, get_method("lora", r=32, dropout=0.1)).mask_bytes_per_layer == 7 * H


def test_ia3_lowest_block_keeps_less() -> None:
    rule = activation_rule(SPEC, peft_method("ia3"))
    assert rule.first_block_less == H + SPEC.intermediate_size


def test_peft_methods_have_estimates_and_sit_below_full() -> None:
    full = est("full").total
    for name, args in [("bias", {}), ("lora", {}), ("propulsion", {}), ("peft", {"peft_type": "ia3"}),
                       ("freeze", {"blocks": 1}), ("freeze", {"fraction": 0.5})]:
        assert est(name, **args).total < full, (name, args)
    assert est("bias").total < est("full").total
    assert est("bias").activations < est("propulsion").activations
    assert est("freeze", blocks=1).activations < est("freeze", fraction=0.5).activations < est("full").activations


def test_peft_counts_are_exact_for_any_config() -> None:
    n, nt = param_counts(SPEC, peft_method("ia3"))
    assert nt == SPEC.num_layers * (3 * H + SPEC.intermediate_size) == 21_504  # what peft reports on pythia-70m
    assert n == SPEC.n_params + nt
    # Configs with no closed form are priced on the meta device: the same counts as applying them for real.
    from st_recipe import build_encoder

    small = get_spec("pythia-14m")
    for m in (get_method("peft", peft_type="loha", r=4), get_method("lora", r=4, targets=["dense"])):
        real = m.apply(build_encoder("random:pythia-14m", max_seq_length=8))
        assert param_counts(small, m) == (real.n_params, real.n_trainable), m.describe()
    # An IA3 config with its own targets has no exact activation rule: it falls back to the generic one.
    custom = peft_method("ia3", target_modules=["dense"])
    assert activation_rule(SPEC, custom).per_layer == 27 * H + SPEC.num_heads


def test_peak_is_the_larger_phase_not_the_sum() -> None:
    e = est("full")
    # Long sequences: activations set the peak, so longer texts raise it by exactly their extra activations...
    longer = estimate_memory(SPEC, get_method("full"), batch_size=16, max_seq_length=150)
    assert longer.total - e.total == (longer.activations + longer.working) - (e.activations + e.working)
    assert e.total < e.weights + e.gradients + e.optimizer + e.activations
    assert e.to_dict()["total"] == e.total
    # Short sequences: gradients + the optimizer step set the peak of full fine-tuning.
    tiny_batch = estimate_memory(SPEC, get_method("full"), batch_size=2, max_seq_length=8)
    assert tiny_batch.total == tiny_batch.weights + tiny_batch.optimizer + tiny_batch.gradients + tiny_batch.step_temporaries
    # ...while there, a little more text changes nothing: the peak is the optimizer step's, not a sum.
    assert estimate_memory(SPEC, get_method("full"), batch_size=2, max_seq_length=16).total == tiny_batch.total


def test_activations_scale_with_tokens_and_mini_batches_cut_them() -> None:
    short = estimate_memory(SPEC, get_method("bias"), batch_size=16, max_seq_length=32)
    long = estimate_memory(SPEC, get_method("bias"), batch_size=16, max_seq_length=64)
    assert long.activations > 1.9 * short.activations
    mini = estimate_memory(SPEC, get_method("bias"), batch_size=16, max_seq_length=64, mini_batch_size=4)
    assert mini.activations < long.activations / 4


def test_mixed_precision_halves_activations_but_keeps_half_weight_copies() -> None:
    fp32 = estimate_memory(SPEC, get_method("bias"), **KW)
    bf16 = estimate_memory(SPEC, get_method("bias"), precision="bf16", **KW)
    assert bf16.activations < fp32.activations
    assert bf16.activations > fp32.activations / 2  # + 2 bytes per block weight


def test_custom_targets_are_estimated_with_their_exact_counts() -> None:
    narrow = estimate_memory(SPEC, get_method("lora", targets=["dense"]), **KW)
    default = estimate_memory(SPEC, get_method("lora"), **KW)
    assert 0 < narrow.optimizer < default.optimizer


def test_sharding_divides_weights_gradients_and_optimizer_and_splits_the_batch() -> None:
    one = estimate_memory(SPEC, get_method("full"), **KW)
    eight = estimate_memory(SPEC, get_method("full"), devices=8, **KW)
    assert eight.optimizer == -(-one.optimizer // 8) and eight.gradients == -(-one.gradients // 8)
    assert one.weights / 8 < eight.weights < one.weights / 2  # a shard plus two gathered blocks
    assert eight.activations < one.activations / 4  # each device runs an eighth of the pairs
    assert eight.total < one.total
    with pytest.raises(StRecipeError, match="devices"):
        estimate_memory(SPEC, get_method("full"), devices=0, **KW)


def test_pythia_12b_full_fine_tuning_fits_8x80gb_only_when_sharded_with_gradcache() -> None:
    big = get_spec("pythia-12b")
    kw = dict(batch_size=1024, max_seq_length=75, precision="bf16")
    assert estimate_memory(big, get_method("full"), mini_batch_size=16, **kw).total > 80 * 2**30  # one device
    assert estimate_memory(big, get_method("full"), devices=8, **kw).total > 80 * 2**30  # 128 pairs at once
    assert estimate_memory(big, get_method("full"), devices=8, mini_batch_size=16, **kw).total < 80 * 2**30
