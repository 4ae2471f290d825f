"""st_recipe.costing.pricing: exact (N, N_t), FLOPs per token, a recipe's cost and the method comparison table."""

from __future__ import annotations

import pytest

from st_recipe import StRecipeError
from st_recipe.costing.pricing import RecipeCost, compare_methods, cost_per_token, param_counts, recipe_cost
from st_recipe.methods import get_method
from st_recipe.models.catalog import get_spec
from st_recipe.models.shapes import resolve_shape
from st_recipe.planning.recipes import Recipe

SPEC = get_spec("pythia-14m")


@pytest.mark.parametrize("name", ["full", "bias", "freeze", "lora", "propulsion"])
def test_catalogue_closed_forms_agree_with_the_meta_build(name):
    from st_recipe.models.config import catalogue_config
    from st_recipe.models.meta import meta_counts

    method = get_method(name)
    n, nt, _ = meta_counts(catalogue_config(SPEC), method)
    assert param_counts(SPEC, method) == (n, nt)


def test_full_trains_every_non_embedding_parameter_and_costs_6n():
    n, nt, fpt = cost_per_token(SPEC, get_method("full"))
    assert n == nt == SPEC.n_params > 0
    assert fpt == 6.0 * n and isinstance(fpt, float)


def test_bias_on_a_local_gpt_neox_counts_its_biases(tiny_neox_dir):
    # 2 blocks of hidden 32: qkv 3h + dense h + fc 4h + out h + two norms 2h = 11h per block, plus the final norm h.
    shape = resolve_shape(str(tiny_neox_dir))
    n, nt, fpt = cost_per_token(shape, get_method("bias"))
    full_n, full_nt = param_counts(shape, get_method("full"))
    assert nt == 2 * 11 * 32 + 32
    assert n == full_n == full_nt
    assert fpt == 4.0 * n + 2.0 * nt


def test_a_method_the_shape_rules_out_fails_in_one_line(tiny_llama_dir):
    shape = resolve_shape(str(tiny_llama_dir))
    with pytest.raises(StRecipeError, match=r"^bias: .* has no bias parameters") as info:
        param_counts(shape, get_method("bias"))
    assert "\n" not in str(info.value)


def test_recipe_cost_is_flops_per_token_times_planned_tokens():
    recipe = Recipe(model="pythia-14m", method="lora", pairs=1000, method_args={"r": 8})
    cost = recipe_cost(recipe)
    assert isinstance(cost, RecipeCost)
    n, nt, fpt = cost_per_token(SPEC, get_method("lora", r=8))
    assert (cost.n_params, cost.n_trainable, cost.flops_per_token) == (n, nt, fpt)
    assert cost.planned_flops == fpt * recipe.tokens == fpt * 78_000
    assert cost.shape == SPEC
    # The method's arguments are priced: a larger rank trains more parameters.
    bigger = recipe_cost(Recipe(model="pythia-14m", method="lora", pairs=1000, method_args={"r": 16}))
    assert bigger.n_trainable > cost.n_trainable and bigger.planned_flops > cost.planned_flops


def test_recipe_cost_is_none_when_the_model_cannot_be_read(tmp_path):
    recipe = Recipe(model=str(tmp_path / "missing"), method="full", pairs=10)
    assert recipe_cost(recipe) is None


def test_compare_methods_without_a_model_lists_formulas_only():
    rows = compare_methods(None, [get_method("full"), get_method("lora", r=4)])
    assert [r["method"] for r in rows] == ["full", "lora"]
    assert rows[0]["cost"] == "6N" and rows[1]["cost"] == "4N + 2N_t"
    assert rows[1]["args"]["r"] == 4
    assert all(r["summary"] for r in rows)
    assert not any("n_params" in r or "flops_per_token" in r or "unavailable" in r for r in rows)


def test_compare_methods_on_a_model_reports_counts_and_what_does_not_apply(tiny_llama_dir):
    rows = compare_methods(str(tiny_llama_dir), [get_method("full"), get_method("bias"), get_method("lora")])
    full, bias, lora = rows
    shape = resolve_shape(str(tiny_llama_dir))
    assert (full["n_params"], full["n_trainable"]) == param_counts(shape, get_method("full"))
    assert full["flops_per_token"] == 6.0 * full["n_params"]
    assert full["trainable_fraction"] == 1.0
    assert "unavailable" in bias and "no bias parameters" in bias["unavailable"] and "n_params" not in bias
    n, nt, fpt = cost_per_token(shape, get_method("lora"))
    assert (lora["n_params"], lora["n_trainable"], lora["flops_per_token"]) == (n, nt, fpt)
    assert 0 < lora["n_trainable"] < lora["n_params"]


def test_compare_methods_on_an_unreadable_model_is_an_error(tmp_path):
    with pytest.raises(StRecipeError, match="does not exist"):
        compare_methods(str(tmp_path / "missing"), [get_method("full")])
