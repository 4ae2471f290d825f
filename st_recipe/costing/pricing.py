"""What a method costs on a model: exact (N, N_t) and the paper's FLOPs per token, for any decoder.

Catalogue (Pythia) shapes use each method's closed form where it has one, so planning them imports no
torch; anything else — another architecture, custom targets, a PEFT config — is priced by applying the
method to the model built on the ``meta`` device (exact counts, no weights allocated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def param_counts(spec: Any, method: Any) -> tuple[int, int]:
    """Exact non-embedding (N, N_t) of ``method`` on the model of ``spec`` (a ModelSpec or ModelShape)."""
    from st_recipe.models.catalog import ModelSpec

    method.check_shape(spec)  # what the config alone rules out fails before the meta build imports torch
    if isinstance(spec, ModelSpec):
        counts = method.predict_params(spec)
        if counts is not None:
            return counts
        from st_recipe.models.config import catalogue_config

        config = catalogue_config(spec)
    else:
        config = spec.config()
    from st_recipe.models.meta import meta_counts

    n, nt, _ = meta_counts(config, method)
    return n, nt


def cost_per_token(spec: Any, method: Any) -> tuple[int, int, float]:
    """(N, N_t, training FLOPs per token under the paper's formula for ``method``)."""
    n, nt = param_counts(spec, method)
    return n, nt, float(method.flops_per_token(n, nt))


@dataclass(frozen=True)
class RecipeCost:
    """What a recipe's model and method cost: N, N_t, FLOPs per token and the planned total."""

    n_params: int
    n_trainable: int
    flops_per_token: float
    planned_flops: float
    shape: Any


def recipe_cost(recipe: Any) -> RecipeCost | None:
    """The cost of ``recipe`` under the paper's formula, or None when its model's shape cannot be read."""
    from st_recipe.errors import StRecipeError
    from st_recipe.methods import get_method
    from st_recipe.models.shapes import resolve_shape

    try:
        shape = resolve_shape(recipe.model)
    except StRecipeError:
        return None
    n, nt, fpt = cost_per_token(shape, get_method(recipe.method, **recipe.method_args))
    return RecipeCost(n, nt, fpt, fpt * recipe.tokens, shape)


def compare_methods(model: str | None, methods: list[Any]) -> list[dict[str, Any]]:
    """One row per method: its arguments, cost formula and summary; with ``model``, exact counts and FLOP/token.

    Counts come from the model's config (meta device or the catalogue's closed forms): no weights are read.
    """
    from st_recipe.errors import StRecipeError

    shape = None
    if model is not None:
        from st_recipe.models.shapes import resolve_shape

        shape = resolve_shape(model)
    rows = []
    for method in methods:
        row: dict[str, Any] = {"method": method.name, "args": method.args(), "cost": type(method).cost_formula,
                               "summary": type(method).summary}
        if shape is not None:
            try:
                method.check_shape(shape)
                row.update(_report(shape, method))
            except StRecipeError as exc:  # a listing shows what does not apply (bias on a bias-free model)
                row["unavailable"] = str(exc)
        rows.append(row)
    return rows


def _report(shape: Any, method: Any) -> dict[str, Any]:
    """The full parameter report of ``method`` on ``shape`` (with embeddings, for display), plus FLOP/token."""
    from st_recipe.models.catalog import ModelSpec
    from st_recipe.models.config import catalogue_config
    from st_recipe.models.meta import meta_counts

    config = catalogue_config(shape) if isinstance(shape, ModelSpec) else shape.config()
    n, nt, report = meta_counts(config, method)
    return {**report.to_dict(), "flops_per_token": float(method.flops_per_token(n, nt))}
