"""The run record's recipe as a :class:`~st_recipe.planning.recipes.Recipe`: written from one, read back as one.

:mod:`st_recipe.run` is the package's lowest layer and cannot import ``Recipe`` (its validation needs the
method registry, costing and data), so :class:`~st_recipe.run.RunRecord` keeps the recipe block as stored:
every record loads whatever its format, whether or not its method's plugin is installed here, and readers
that only need a field or two (``base_model``, eval's ``--compare-base``) take it as written. Readers that want
the recipe itself take :func:`recorded_recipe`; :func:`run_record` is what ``train`` writes.
"""

from __future__ import annotations

from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.planning.recipes import Recipe
from st_recipe.run import RUN_RECORD, FlopsInfo, Heldout, LossCurve, MethodInfo, ModelInfo, RunRecord
from st_recipe.training.assemble import Built, Schedule
from st_recipe.training.budget_state import BudgetState
from st_recipe.training.inputs import TrainData, data_info


def recorded_recipe(record: RunRecord, where: str = RUN_RECORD) -> Recipe:
    """The record's recipe, validated; fields a newer writer added are ignored, anything else wrong is one line."""
    stored = record.recipe
    if not isinstance(stored, dict):
        raise StRecipeError(f"{where}: the run record has no recipe")
    known = set(Recipe.field_names())
    values = {k: v for k, v in stored.items() if k in known}
    provenance = stored.get("provenance")
    if provenance is not None:
        values["provenance"] = ({k: v for k, v in provenance.items() if k in known}
                                if isinstance(provenance, dict) else provenance)
    return Recipe.from_dict(values, where=f"{where}: recipe")


def run_record(recipe: Recipe, inputs: TrainData, built: Built, model: Any, method: Any, schedule: Schedule,
               state: BudgetState, steps: int, *, wall: float, repo_id: str | None, gradient_checkpointing: bool,
               resumed: bool, dev: Any) -> RunRecord:
    """``st_recipe.json``: the recipe, what was trained on, the FLOPs planned and spent, the curves."""
    from st_recipe.training.environment import hardware, versions
    from st_recipe.training.heldout import heldout_scores

    n, nt = built.report.n_params, built.report.n_trainable
    not_counted = ("GradCache's extra embedding pass and gradient-checkpointing recompute"
                   if (recipe.mini_batch_size or gradient_checkpointing) else None)
    if recipe.matryoshka_dims:
        extra = (f"the Matryoshka loss's {len(recipe.matryoshka_dims)} extra in-batch similarity matrices on "
                 "truncated embeddings (batch² × dim each; negligible next to the encoder)")
        not_counted = f"{not_counted}; {extra}" if not_counted else extra
    budget, charged, held = schedule.budget, schedule.charged, inputs.held
    return RunRecord(
        recipe=recipe.to_dict(),
        repo_id=repo_id,
        model=ModelInfo(**built.source_info),
        random_init=bool(built.source_info.get("random_init")),
        method=MethodInfo(name=method.name, args=method.args(), params=built.report.to_dict(),
                          cost_formula=method.cost_formula),
        data=data_info(inputs.source, inputs.pairs_all, inputs.train_pairs, held,
                       schedule.planned_steps * recipe.batch_size / len(inputs.train_pairs), recipe.hard_negatives,
                       built.mining),
        flops=FlopsInfo(budget=budget + charged, planned=min(schedule.planned_steps * schedule.per_batch, budget),
                        spent=state.flops, spent_fraction=(state.flops + charged) / (budget + charged),
                        mining_charged=charged, executed_with_padding=state.padded,
                        paper_formula=method.flops_per_token(n, nt) * state.tokens, per_pair_estimate=schedule.per_pair,
                        profile=built.profile.to_dict(), stopped_by=state.stopped_by, not_counted=not_counted),
        steps=steps,
        planned_steps=schedule.planned_steps,
        pairs_seen=state.pairs,
        tokens_seen=state.tokens,
        loss=LossCurve(final=state.losses[-1] if state.losses else None, per_step=state.losses, lr=state.lrs),
        heldout=Heldout(before=built.before,
                        after=heldout_scores(model, held, recipe.temperature) if held is not None else None),
        wall_time_s=round(wall, 2),
        hardware=hardware(),
        versions=versions(),
        seed=recipe.seed,
        gradient_checkpointing=gradient_checkpointing,
        resumed=resumed, dev=dev,
    )
