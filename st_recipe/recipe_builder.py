"""Turn CLI-style inputs (a budget, a recipe file or name, overriding flags) into one Recipe with provenance."""

from __future__ import annotations

from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.recipes import Recipe


def build_recipe(
    *,
    budget: str | float | None = None,
    recipe: str | None = None,
    model: str | None = None,
    method: str | None = None,
    method_args: tuple[str, ...] | list[str] | dict[str, Any] = (),
    batch_size: int | None = None,
    mini_batch_size: int | None = None,
    learning_rate: float | None = None,
    max_seq_length: int | None = None,
    bf16: bool = False,
    seed: int | None = None,
) -> Recipe:
    """A recipe from a registry name/file, or planned from the budget; explicit flags override (provenance ``user``)."""
    from st_recipe.flops import check_budget
    from st_recipe.methods import parse_method_args
    from st_recipe.planner import plan

    args = method_args if isinstance(method_args, dict) else parse_method_args(list(method_args))
    if recipe is not None:
        from st_recipe.recipes import get_recipe

        base = get_recipe(recipe)
        changes: dict[str, Any] = {}
        if method is not None:
            changes["method"] = method
            changes["method_args"] = args
        elif args:
            changes["method_args"] = {**base.method_args, **args}
        if budget is not None:
            changes["budget"] = check_budget(budget)
        result = base.replace(**changes) if changes else base
        if model is not None and model != base.model:
            result = _replan_for_model(result, model, recipe)
        elif changes:
            result = _rederive_pairs(result, recipe)
    else:
        if budget is None:
            raise StRecipeError("give --budget (FLOPs, e.g. 1e17) or a --recipe/--zoo that has one")
        result = plan(check_budget(budget), model=model, method=method, method_args=args or None,
                      precision="bf16" if bf16 else "fp32", batch_size=batch_size)
    overrides: dict[str, Any] = {}
    if batch_size is not None and result.batch_size != batch_size:
        overrides["batch_size"] = batch_size
    if mini_batch_size is not None:
        overrides["mini_batch_size"] = mini_batch_size
    if learning_rate is not None:
        overrides["learning_rate"] = learning_rate
    if max_seq_length is not None:
        overrides["max_seq_length"] = max_seq_length
    if bf16 and result.precision != "bf16":
        overrides["precision"] = "bf16"
    if seed is not None:
        overrides["seed"] = seed
    if overrides:
        result = result.replace(**overrides)
    if max_seq_length is not None:
        check_seq_length(max_seq_length, result.model)
    return result


def check_seq_length(max_seq_length: int, model: str) -> None:
    """Refuse a --max-seq-length beyond the model's position table (texts would be cut there, or crash)."""
    positions = getattr(_shape_or_none(model), "max_positions", 0) or 0
    if isinstance(positions, int) and 0 < positions < max_seq_length:
        raise StRecipeError(f"--max-seq-length {max_seq_length} is larger than the {positions} positions "
                            f"{model} has; use at most {positions}")


def _replan_for_model(recipe: Recipe, model: str, name: str) -> Recipe:
    """The recipe with another base model: every model-dependent field re-derived for it, or marked carried over."""
    from st_recipe.planner import learning_rate_for
    from st_recipe.recipes import Provenance

    planned_for = recipe.model
    spec = _shape_or_none(model)
    lr, lr_prov = learning_rate_for(spec)
    out = recipe.replace(model=model).replace(source=lr_prov.source, note=lr_prov.note, learning_rate=lr)
    if recipe.mini_batch_size is not None:
        old = recipe.provenance["mini_batch_size"]
        out.provenance["mini_batch_size"] = Provenance(
            old.source, f"carried over from recipe {name!r} (sized for {planned_for}; {old.note}); not re-planned for {model}")
    return _rederive_pairs(out, name, planned_for=planned_for)


def _rederive_pairs(recipe: Recipe, name: str, planned_for: str | None = None) -> Recipe:
    """Recompute pairs for a changed budget/model/method under the planning convention (else mark them carried over)."""
    from st_recipe.flops import pairs_for_budget
    from st_recipe.methods import get_method
    from st_recipe.pricing import param_counts
    from st_recipe.recipes import Provenance

    spec = _shape_or_none(recipe.model)
    method = get_method(recipe.method, **recipe.method_args)
    counts = param_counts(spec, method) if spec is not None and recipe.budget is not None else None
    if counts is None:
        old = recipe.provenance["pairs"]
        why = f"planned for {planned_for}" if planned_for else "planned before the change"
        out = recipe.replace(pairs=recipe.pairs)
        out.provenance["pairs"] = Provenance(
            old.source, f"carried over from recipe {name!r} ({why}: {old.note or old.source}); not re-derived for "
                        f"{recipe.model}, whose shape is unknown; training stops at the budget, not at this count")
        return out
    fpt = method.flops_per_token(*counts)
    out = recipe.replace(pairs=max(1, pairs_for_budget(recipe.budget, fpt, recipe.tokens_per_pair)))
    out.provenance["pairs"] = Provenance("derived", f"budget / ({method.cost_formula} = {fpt:.4g} FLOP/token of "
                                                    f"{recipe.model} × {recipe.tokens_per_pair:g} tokens/pair)")
    return out


def _shape_or_none(model: str) -> Any:
    """The model's shape for re-deriving fields, or None when its config cannot be read as a decoder."""
    from st_recipe.shapes import resolve_shape

    try:
        return resolve_shape(model)
    except StRecipeError:
        return None
