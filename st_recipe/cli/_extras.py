"""``train``'s tracking and dev-evaluation flags (``--report-to``, ``--eval-file`` ...), checked before torch loads.

One decorator adds the flags and parses them into the objects :func:`st_recipe.training.train` takes, kept in
the click context for the command to pass on (:func:`run_extras`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import click

_KEY = "st_recipe.run_extras"


def run_extras_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add --report-to, --run-name, --eval-file, --eval-flops and --eval-points to a command."""

    @functools.wraps(fn)
    def wrapper(*args: Any, report_to: str | None = None, run_name: str | None = None, eval_file: str | None = None,
                eval_flops: float | None = None, eval_points: int | None = None, **kwargs: Any) -> Any:
        from st_recipe.training.dev_eval import check_dev_eval
        from st_recipe.training.tracking import Tracking, parse_report_to

        trackers = parse_report_to(report_to)
        tracking = Tracking(trackers, run_name=run_name) if trackers else None
        dev_eval = check_dev_eval(eval_file, eval_flops, eval_points)
        click.get_current_context().meta[_KEY] = {"tracking": tracking, "dev_eval": dev_eval}
        return fn(*args, **kwargs)

    options = [
        click.option("--report-to", default="none", show_default=True, metavar="TRACKERS",
                     help="Log to these trackers through the trainer's own integrations: tensorboard, wandb, mlflow, "
                          "trackio (comma-separated) or none. FLOPs spent, budget fraction, pairs and tokens are logged "
                          "at every step; the recipe with its provenance is the run config."),
        click.option("--run-name", default=None, help="The run's name in the tracker (default: the trainer's)."),
        click.option("--eval-file", default=None, metavar="SPEC",
                     help="Score a dev task file during training ([NAME=][sts:|retrieval:]PATH, as eval --task-file "
                          "takes): st_recipe.json and the tracker get the score against FLOPs spent."),
        click.option("--eval-flops", type=float, default=None, metavar="F",
                     help="With --eval-file: evaluate every F training FLOPs (default: 5 points per run)."),
        click.option("--eval-points", type=int, default=None, metavar="N",
                     help="With --eval-file: evaluate N times over the run, evenly in FLOPs (the last at the end), and once at 0."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def run_extras() -> dict[str, Any]:
    """``tracking=`` and ``dev_eval=`` for :func:`st_recipe.training.train`, as the flags asked."""
    ctx = click.get_current_context(silent=True)
    return dict(ctx.meta.get(_KEY, {})) if ctx is not None else {}
