"""Each method trains exactly its parameters, reports paper-convention counts and merges exactly."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from st_recipe import StRecipeError, get_method, list_methods, register_method
from st_recipe.methods import get_method_class, parse_method_args
from st_recipe.methods.base import Method
from st_recipe.models.architecture import hf_model

TEXTS = ["The cat sat on the mat.", "Rivers flow to the sea, slowly and for a long time."]


def _embed(model):
    return model.encode(TEXTS, convert_to_tensor=True)


def _trainable(model):
    return {n for n, p in hf_model(model).named_parameters() if p.requires_grad}


def _perturb_trainable(model, seed=0):
    """Move every trainable parameter so that merging is tested away from the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in hf_model(model).parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)


def test_builtin_methods_are_registered():
    assert {"full", "freeze", "bias", "lora", "propulsion", "peft"} <= set(list_methods())


def test_full_trains_everything(tiny_encoder):
    report = get_method("full").apply(tiny_encoder)
    assert report.n_trainable == report.n_params and report.n_trainable_all == report.n_params_all
    # hidden 32, 2 layers: L(12h^2 + 13h) + 2h
    assert report.n_params == 2 * (12 * 32 * 32 + 13 * 32) + 2 * 32


def test_freeze_trains_last_blocks_and_final_norm(tiny_encoder):
    report = get_method("freeze", blocks=1).apply(tiny_encoder)
    names = _trainable(tiny_encoder)
    assert names and all(n.startswith("layers.1.") or n.startswith("final_layer_norm.") for n in names)
    assert any(n.startswith("final_layer_norm.") for n in names)
    assert report.n_trainable == 12 * 32 * 32 + 13 * 32 + 2 * 32
    assert report.n_trainable_all == report.n_trainable  # embeddings frozen


def test_freeze_fraction_rounds_up_to_whole_blocks(tiny_encoder):
    get_method("freeze", fraction=0.25).apply(tiny_encoder)
    assert {n.split(".")[0] + "." + n.split(".")[1] for n in _trainable(tiny_encoder) if n.startswith("layers.")} == {"layers.1"}


def test_bias_trains_every_bias_including_layer_norm(tiny_encoder):
    report = get_method("bias").apply(tiny_encoder)
    names = _trainable(tiny_encoder)
    assert names == {n for n, _ in hf_model(tiny_encoder).named_parameters() if n.endswith("bias")}
    assert any("layernorm.bias" in n or "layer_norm.bias" in n for n in names)
    assert report.n_trainable == sum(p.numel() for n, p in hf_model(tiny_encoder).named_parameters() if n.endswith("bias"))


def test_bias_on_a_model_without_biases_is_an_error(tiny_llama_dir):
    from st_recipe import build_encoder

    with pytest.raises(StRecipeError, match="no bias parameters"):
        get_method("bias").apply(build_encoder(str(tiny_llama_dir)))


def test_lora_defaults_follow_the_paper(tiny_encoder):
    method = get_method("lora")
    assert (method.r, method.alpha, method.dropout) == (32, 8.0, 0.0)
    report = method.apply(tiny_encoder)
    names = _trainable(tiny_encoder)
    for target in ("query_key_value", "attention.dense", "dense_h_to_4h", "dense_4h_to_h", "embed_in"):
        assert any(target in n and "lora_" in n for n in names), target
    assert all("lora_" in n for n in names)
    # Non-embedding LoRA weights on 4 linear layers per block: r * (in + out) each.
    h, r = 32, 32
    per_block = r * ((h + 3 * h) + (h + h) + (h + 4 * h) + (4 * h + h))
    assert report.n_trainable == 2 * per_block


def test_lora_on_llama_uses_llama_names(tiny_llama_dir):
    from st_recipe import build_encoder

    model = build_encoder(str(tiny_llama_dir))
    get_method("lora", r=4).apply(model)
    names = _trainable(model)
    for target in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "embed_tokens"):
        assert any(target in n for n in names), target


def test_propulsion_trains_one_vector_per_adapted_layer(tiny_encoder):
    report = get_method("propulsion", degree=20).apply(tiny_encoder)
    names = _trainable(tiny_encoder)
    assert names and all(n.endswith("propulsion_z") for n in names)
    h = 32
    per_block = 3 * h + h + 4 * h + h  # query_key_value, dense, dense_h_to_4h, dense_4h_to_h outputs
    assert report.n_trainable == 2 * per_block
    assert report.n_trainable_all == report.n_trainable + h  # plus the embedding's z


@pytest.mark.parametrize(
    "name, args",
    [
        ("lora", {"r": 4}),
        ("lora", {"r": 4, "use_dora": True}),
        ("propulsion", {"degree": 10}),
        ("peft", {"peft_type": "ia3"}),
        ("peft", {"peft_type": "loha", "r": 4, "target_modules": ["query_key_value", "dense_4h_to_h"]}),
    ],
)
def test_merge_is_exact_away_from_identity(tiny_encoder, name, args):
    method = get_method(name, **args)
    method.apply(tiny_encoder)
    _perturb_trainable(tiny_encoder)
    before = _embed(tiny_encoder)
    method.merge(tiny_encoder)
    model = hf_model(tiny_encoder)
    assert type(model).__name__ == "GPTNeoXModel"
    assert not any("lora" in n or "propulsion" in n or "ia3" in n or "hada" in n for n, _ in model.named_parameters())
    assert (_embed(tiny_encoder) - before).abs().max().item() <= 1e-5


@pytest.mark.parametrize(
    "name, args, needle",
    [
        ("lora", {"r": 0}, "rank r must be an integer >= 1"),
        ("lora", {"dropout": 1.5}, "dropout"),
        ("freeze", {"fraction": 0}, "fraction must be a number > 0"),
        ("freeze", {"fraction": 1.5}, "fraction"),
        ("freeze", {"blocks": 0}, "blocks"),
        ("freeze", {"blocks": 1, "fraction": 0.5}, "not both"),
        ("propulsion", {"degree": 0}, "degree"),
        ("propulsion", {"degree": -3}, "degree"),
        ("peft", {"peft_type": "prompt_tuning"}, "not supported"),
        ("peft", {"peft_type": "prefix_tuning"}, "not supported"),
        ("peft", {"peft_type": "loraa"}, "did you mean"),
        ("lora", {"rank": 8}, "no argument rank"),
        ("loraa", {}, "did you mean lora"),
    ],
)
def test_bad_method_arguments(name, args, needle):
    with pytest.raises(StRecipeError) as info:
        get_method(name, **args)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["lora", "propulsion"])
def test_targets_that_match_nothing_are_an_error(tiny_encoder, name):
    with pytest.raises(StRecipeError, match="q_proj"):
        get_method(name, targets=["q_proj", "dense"]).apply(tiny_encoder)


def test_freeze_more_blocks_than_the_model_has(tiny_encoder):
    with pytest.raises(StRecipeError, match="only 2 blocks"):
        get_method("freeze", blocks=5).apply(tiny_encoder)


def test_third_party_method_registration(tiny_encoder):
    @register_method
    @dataclass
    class FinalNorm(Method):
        name = "final-norm-test"
        cost_formula = "4N + 2N_t"

        def apply(self, st_model):
            for n, p in hf_model(st_model).named_parameters():
                p.requires_grad_(n.startswith("final_layer_norm"))
            return self.report(st_model)

        def flops_per_token(self, n_params, n_trainable):
            return 4.0 * n_params + 2.0 * n_trainable

    assert get_method_class("final-norm-test") is FinalNorm
    assert get_method("final-norm-test").apply(tiny_encoder).n_trainable == 64


def test_cli_style_arguments_are_typed():
    assert parse_method_args(["r=64", "alpha=16", "dropout=0.1", "targets=query_key_value,dense", "use_dora=true"]) == {
        "r": 64,
        "alpha": 16,
        "dropout": 0.1,
        "targets": ["query_key_value", "dense"],
        "use_dora": True,
    }
    with pytest.raises(StRecipeError, match="key=value"):
        parse_method_args(["r64"])
