"""What ``train`` checks before torch loads, so bad input fails in well under a second: the run dir, the model,
the data (a file is read now), enough pairs for a batch after the held-out share, and a writable output place."""

from __future__ import annotations

from typing import Any

from st_recipe._text import model_slug
from st_recipe.data.sources import check_source
from st_recipe.models.args import check_model
from st_recipe.outputs import check_can_create
from st_recipe.planning.planner import budget_label
from st_recipe.planning.recipes import Recipe
from st_recipe.run import RunDir


def default_out(recipe: Recipe) -> str:
    """The run dir a run writes when none is given: ``runs/<model>-<method>-<budget>``."""
    return f"runs/{model_slug(recipe.model)}-{recipe.method}-{budget_label(recipe.budget or 0)}"


def check_train_inputs(recipe: Recipe, data: Any, out: str | None, *, overwrite: bool = False, resume: bool = False,
                       anchor_column: str | None = None, positive_column: str | None = None,
                       mine_negatives: bool = False, model_checked: bool = False) -> tuple[str, Any]:
    """Check a run's inputs without torch; returns (the run dir, the pairs of a local file or the source as given)."""
    target = out or default_out(recipe)
    RunDir.at(target).check(overwrite=overwrite, resume=resume)
    if not model_checked:
        check_model(recipe.model)
    pairs = check_source(data, anchor_column=anchor_column, positive_column=positive_column, seed=recipe.seed)
    if recipe.hard_negatives and not mine_negatives and hasattr(pairs, "with_negatives"):
        pairs.with_negatives(recipe.hard_negatives)  # a file without enough negatives fails here, before torch
    if hasattr(pairs, "anchors"):
        from st_recipe.data import check_enough
        from st_recipe.training.heldout import split_heldout

        check_enough(split_heldout(pairs, data)[0], recipe.batch_size)  # a batch after the held-out share
    check_can_create(target, "--out")
    return target, pairs
