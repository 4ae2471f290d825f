"""What a run adds to the plain budget trainer when asked: tracking (``report_to``) and dev-set scores.

One object, built in :func:`~st_recipe.training.orchestrate.train`, hands the trainer its argument class and
values, its extra callbacks and its evaluator, runs the evaluation at 0 FLOPs and the closing steps, and
gives the record its ``dev`` section.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_recipe.training.budget_state import BudgetState
from st_recipe.training.dev_eval import DevEval, build_evaluator, dev_callback, dev_record, metered_evaluator
from st_recipe.training.tracking import Tracking, args_class, end_integrations, tracking_args


@dataclass
class RunExtras:
    """Tracking and dev evaluation for one run (both optional; without them the trainer is unchanged)."""

    state: BudgetState
    tracking: Tracking | None = None
    dev: DevEval | None = None
    evaluator: Any = None
    task: str | None = None
    ended: list[bool] = field(default_factory=list)  # filled when the trainer calls on_train_end
    env_added: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, tracking: Tracking | None, dev: DevEval | None, state: BudgetState, profile: Any,
              out: Path) -> RunExtras:
        """Build the evaluator and set the integrations' variables (they read them when the trainer starts)."""
        extras = cls(state, tracking, dev)
        if dev is not None:
            inner, extras.task = build_evaluator(dev.spec)
            extras.evaluator = metered_evaluator(inner, state, profile)
        if tracking is not None and tracking.report_to:
            wanted = tracking.env(out)
            extras.env_added = [k for k in wanted if k not in os.environ]
            os.environ.update({k: wanted[k] for k in extras.env_added})
        return extras

    def args_class(self) -> type:
        """The training-arguments class (the recipe rides along as a field)."""
        return args_class()

    def args(self, recipe: dict[str, Any]) -> dict[str, Any]:
        """Training-argument values: report_to, run name, project, the recipe."""
        return tracking_args(self.tracking, recipe)

    def callbacks(self, base: type) -> list[Any]:
        """The dev-evaluation trigger and the end-of-training watcher."""
        ended = self.ended

        class EndWatcher(base):  # type: ignore[misc, valid-type]
            def on_train_end(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
                ended.append(True)

        extra = [EndWatcher()]
        if self.dev is not None:
            extra.append(dev_callback(base, self.state, self.dev.interval(self.state.budget)))
        return extra

    def trainer_kwargs(self) -> dict[str, Any]:
        """``evaluator=`` for the trainer when there is a dev set."""
        return {"evaluator": self.evaluator} if self.evaluator is not None else {}

    def before(self, trainer: Any, resumed: bool) -> None:
        """The dev score at 0 FLOPs (the base model), so the curve starts where training does."""
        if self.evaluator is not None and not resumed:  # every process: evaluate() gathers across them
            trainer.evaluate()

    def finish(self, trainer: Any) -> None:
        """When training stopped by exception: the final dev point, then let the integrations close their runs."""
        if not self.ended:
            if self.evaluator is not None and (not self.state.dev or self.state.dev[-1]["flops"] < self.state.flops):
                trainer.evaluate()
            if self.tracking is not None and self.tracking.report_to:
                end_integrations(trainer)
        for key in self.env_added:
            os.environ.pop(key, None)
        self.env_added = []

    def record(self) -> dict[str, Any] | None:
        """The record's ``dev`` section (None without a dev set)."""
        return dev_record(self.dev, self.task, self.state)
