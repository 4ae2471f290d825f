"""What a user asks for (a budget or a recipe, a model, a method, overriding hyperparameters, quality levers) as
one Recipe with provenance: the one builder ``train``, ``sweep``, ``zoo`` and Python callers share."""

from __future__ import annotations

from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.planning.recipes import Recipe


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
    temperature: float | None = None,
    attention: str | None = None,
    prompts: dict[str, str] | tuple[str, ...] | list[str] | None = None,
    include_prompt: bool = True,
    matryoshka_dims: str | list[int] | tuple[int, ...] | None = None,
    hard_negatives: int | None = None,
) -> Recipe:
    """A recipe from a registry name/file, or planned from the budget; explicit arguments override (provenance ``user``).

    The one place a recipe is built from what a user asked for, as ``st-recipe train``/``sweep``/``zoo`` and Python
    callers pass it: budget or recipe, model, method and its arguments, hyperparameters, and the quality levers
    (``attention``, ``prompts`` as a dict or ``NAME=TEXT`` items, ``include_prompt``, ``matryoshka_dims`` as a list
    or ``"768,256"``, ``hard_negatives``). Every lever is checked before the plan, so bad input fails without torch.
    """
    levers = check_levers(attention=attention, prompts=prompts, include_prompt=include_prompt,
                          matryoshka_dims=matryoshka_dims, hard_negatives=hard_negatives)
    result = _base_recipe(budget=budget, recipe=recipe, model=model, method=method, method_args=method_args,
                          batch_size=batch_size, bf16=bf16, hard_negatives=levers["hard_negatives"])
    result = _with_overrides(result, batch_size=batch_size, mini_batch_size=mini_batch_size,
                             learning_rate=learning_rate, max_seq_length=max_seq_length, bf16=bf16, seed=seed,
                             temperature=temperature)
    result = apply_levers(result, **levers)
    check_matryoshka_fits(result)
    return result


def _base_recipe(*, budget: str | float | None, recipe: str | None, model: str | None, method: str | None,
                 method_args: tuple[str, ...] | list[str] | dict[str, Any], batch_size: int | None,
                 bf16: bool, hard_negatives: int | None) -> Recipe:
    """The registry recipe (re-derived for a changed model, method or budget), or the plan for the budget (which
    prices hard negatives itself, as ``st-recipe plan --hard-negatives`` does)."""
    from st_recipe.costing.flops import check_budget
    from st_recipe.methods import parse_method_args
    from st_recipe.planning.planner import plan

    args = method_args if isinstance(method_args, dict) else parse_method_args(list(method_args))
    if recipe is not None:
        from st_recipe.planning.recipes import get_recipe

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
                      precision="bf16" if bf16 else "fp32", batch_size=batch_size, hard_negatives=hard_negatives or 0)
    return result


def _with_overrides(result: Recipe, *, batch_size: int | None, mini_batch_size: int | None,
                    learning_rate: float | None, max_seq_length: int | None, bf16: bool, seed: int | None,
                    temperature: float | None) -> Recipe:
    """Hyperparameters the user set explicitly (provenance ``user``)."""
    overrides: dict[str, Any] = {}
    if temperature is not None:
        overrides["temperature"] = temperature
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


def parse_prompts(items: dict[str, str] | tuple[str, ...] | list[str] | None) -> dict[str, str]:
    """Prompts as a dict, from a dict or ``NAME=TEXT`` items (``--prompt``); one-line errors for a missing ``=``
    or a repeated name."""
    from st_recipe.planning.recipes import check_prompts

    if isinstance(items, dict):
        return check_prompts(dict(items))
    out: dict[str, str] = {}
    for item in items or ():
        name, eq, text = str(item).partition("=")
        name = name.strip()
        if not eq or not name:
            raise StRecipeError(f'--prompt must look like NAME=TEXT (e.g. query="Represent this question: "), not {item!r}')
        if name in out:
            raise StRecipeError(f"--prompt {name} given twice")
        out[name] = text
    return check_prompts(out)


def check_levers(*, attention: str | None = None, prompts: dict[str, str] | tuple[str, ...] | list[str] | None = None,
                 include_prompt: bool = True, matryoshka_dims: str | list[int] | tuple[int, ...] | None = None,
                 hard_negatives: int | None = None) -> dict[str, Any]:
    """The quality levers, checked and normalised (no torch): what :func:`apply_levers` takes."""
    from st_recipe.data.pairs import check_negative_count
    from st_recipe.planning.recipes import check_matryoshka_dims

    if attention is not None and attention not in ("causal", "bidirectional"):
        raise StRecipeError(f"attention must be causal or bidirectional, not {attention!r}")
    dims = None if matryoshka_dims is None else check_matryoshka_dims(
        matryoshka_dims if isinstance(matryoshka_dims, str) else list(matryoshka_dims))
    return {"attention": attention, "prompts": parse_prompts(prompts), "include_prompt": bool(include_prompt),
            "matryoshka_dims": dims,
            "hard_negatives": None if hard_negatives is None else check_negative_count(hard_negatives)}


def apply_levers(recipe: Recipe, *, attention: str | None = None,
                 prompts: dict[str, str] | tuple[str, ...] | list[str] | None = None, include_prompt: bool = True,
                 matryoshka_dims: str | list[int] | tuple[int, ...] | None = None,
                 hard_negatives: int | None = None) -> Recipe:
    """The recipe with the quality levers applied (provenance ``user``; hard negatives re-derive tokens and pairs)."""
    levers = check_levers(attention=attention, prompts=prompts, include_prompt=include_prompt,
                          matryoshka_dims=matryoshka_dims, hard_negatives=hard_negatives)
    attention, prompts, matryoshka_dims = levers["attention"], levers["prompts"], levers["matryoshka_dims"]
    changes: dict[str, Any] = {}
    if attention is not None and attention != recipe.attention:
        changes["attention"] = attention
    if prompts:
        changes["prompts"] = prompts
    if not include_prompt:
        if not (changes.get("prompts") or recipe.prompts):
            raise StRecipeError("--exclude-prompt-from-pooling needs a --prompt (or prompts in the recipe)")
        changes["include_prompt"] = False
    if matryoshka_dims is not None:
        changes["matryoshka_dims"] = list(matryoshka_dims)
    out = recipe.replace(**changes) if changes else recipe
    if hard_negatives is not None:
        from st_recipe.planning.planner import with_hard_negatives

        out = with_hard_negatives(out, hard_negatives)
    return out


def lever_summary(recipe: Recipe) -> str:
    """The quality levers in use, for a one-line summary ('' when all are off)."""
    parts = []
    if recipe.attention != "causal":
        parts.append(f"attention {recipe.attention}")
    if recipe.prompts:
        parts.append("prompts " + ", ".join(recipe.prompts) + ("" if recipe.include_prompt else " (not pooled)"))
    if recipe.matryoshka_dims:
        parts.append("matryoshka " + ",".join(str(d) for d in recipe.matryoshka_dims))
    if recipe.hard_negatives:
        parts.append(f"{recipe.hard_negatives} hard negative(s) per pair")
    return "".join(f"; {p}" for p in parts)


def check_matryoshka_fits(recipe: Recipe) -> None:
    """Matryoshka dims no larger than the model's hidden size, where its shape can be read without torch."""
    if not recipe.matryoshka_dims:
        return
    from st_recipe.models.shapes import resolve_shape
    from st_recipe.planning.recipes import check_matryoshka_dims

    try:
        hidden = getattr(resolve_shape(recipe.model), "hidden_size", None)
    except StRecipeError:
        return  # checked again in training, against the loaded model's embedding dimension
    if isinstance(hidden, int):
        check_matryoshka_dims(recipe.matryoshka_dims, hidden)


def check_seq_length(max_seq_length: int, model: str) -> None:
    """Refuse a --max-seq-length beyond the model's position table (texts would be cut there, or crash)."""
    positions = getattr(_shape_or_none(model), "max_positions", 0) or 0
    if isinstance(positions, int) and 0 < positions < max_seq_length:
        raise StRecipeError(f"--max-seq-length {max_seq_length} is larger than the {positions} positions "
                            f"{model} has; use at most {positions}")


def _replan_for_model(recipe: Recipe, model: str, name: str) -> Recipe:
    """The recipe with another base model: every model-dependent field re-derived for it, or marked carried over."""
    from st_recipe.planning.planner import learning_rate_for
    from st_recipe.planning.recipes import Provenance

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
    from st_recipe.costing.flops import pairs_for_budget
    from st_recipe.costing.pricing import param_counts
    from st_recipe.methods import get_method
    from st_recipe.planning.recipes import Provenance

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
    from st_recipe.models.shapes import resolve_shape

    try:
        return resolve_shape(model)
    except StRecipeError:
        return None
