"""Experiment tracking through the trainer's own integrations (``report_to``): TensorBoard, W&B, MLflow, Trackio.

st-recipe adds no tracker of its own. It names the integrations, puts its budget counts into every log
(:meth:`~st_recipe.training.budget_state.BudgetState.metrics`), puts the recipe with its provenance into the
run config (a field of the training arguments, which every integration logs), and points each integration
at one place per run and one group per sweep through the environment variables the integrations read.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_recipe.errors import StRecipeError

# report_to name -> the package its integration imports (transformers' own availability checks).
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio"}
TENSORBOARD_SUFFIX = ".tensorboard"


@dataclass(frozen=True)
class Tracking:
    """Where a run reports: the integrations, the run's name and the group (a sweep) it belongs to."""

    report_to: tuple[str, ...] = ()
    run_name: str | None = None
    group: str | None = None  # W&B group, MLflow experiment, Trackio project: one per sweep
    tensorboard_dir: str | None = None  # default: <out>.tensorboard beside the run dir

    def env(self, out: Path) -> dict[str, str]:
        """The integrations' own environment variables for this run (values the user already set win)."""
        env: dict[str, str] = {}
        if "tensorboard" in self.report_to:
            env["TENSORBOARD_LOGGING_DIR"] = self.tensorboard_dir or str(out) + TENSORBOARD_SUFFIX
        if self.group:
            env.update(WANDB_RUN_GROUP=self.group, MLFLOW_EXPERIMENT_NAME=self.group)
        if "mlflow" in self.report_to:
            # Without flattening MLflow drops every nested value (the recipe) as "too long".
            env["MLFLOW_FLATTEN_PARAMS"] = "TRUE"
        return env


def parse_report_to(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``tensorboard,trackio`` (or a list) -> the integrations; ``none`` or empty -> (); unknown or missing -> error."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(i).strip().lower() for i in items if str(i).strip()]
    if names == ["none"] or not names:
        return ()
    if "none" in names:
        raise StRecipeError(f"--report-to none turns tracking off; it cannot be combined with {', '.join(n for n in names if n != 'none')}")
    for name in names:
        if name not in TRACKERS:
            raise StRecipeError(f"--report-to {name!r} is not a supported tracker; choose from "
                                f"{', '.join(TRACKERS)} or none")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            extra = "st-recipe[track]" if name in ("tensorboard", "trackio") else TRACKERS[name]
            raise StRecipeError(f"--report-to {name} needs the {TRACKERS[name]} package: pip install '{extra}'")
    return tuple(dict.fromkeys(names))


def args_class() -> type:
    """SentenceTransformerTrainingArguments with the recipe as a field, so every tracker logs it as config."""
    global _ARGS_CLASS
    if _ARGS_CLASS is None:
        from sentence_transformers import SentenceTransformerTrainingArguments

        @dataclass
        class RecipeTrainingArguments(SentenceTransformerTrainingArguments):
            """The trainer's arguments plus ``st_recipe``: the recipe with the provenance of every field."""

            st_recipe: dict[str, Any] = field(default_factory=dict)

        # Checkpoints pickle the arguments: give the class a name pickle can import back.
        RecipeTrainingArguments.__module__ = __name__
        RecipeTrainingArguments.__qualname__ = "RecipeTrainingArguments"
        globals()["RecipeTrainingArguments"] = RecipeTrainingArguments
        _ARGS_CLASS = RecipeTrainingArguments
    return _ARGS_CLASS


_ARGS_CLASS: type | None = None


def tracking_args(tracking: Tracking | None, recipe: dict[str, Any]) -> dict[str, Any]:
    """The training-argument values for ``tracking``: report_to, run name, Trackio project, the recipe."""
    if tracking is None or not tracking.report_to:
        return {"report_to": [], "st_recipe": recipe}
    extra: dict[str, Any] = {"report_to": list(tracking.report_to), "st_recipe": recipe}
    if tracking.run_name:
        extra["run_name"] = tracking.run_name
    extra["project"] = tracking.group or "st-recipe"  # Trackio's project (the trainer's default is "huggingface")
    return extra


def end_integrations(trainer: Any) -> None:
    """Let the integrations close their runs (flush event files, end the MLflow run, finish Trackio).

    The budget trainer can stop by exception before its last step, and then the trainer never calls
    ``on_train_end``: without this the last metrics could stay in a writer's buffer.
    """
    trainer.callback_handler.on_train_end(trainer.args, trainer.state, trainer.control)
