"""Run a grid of (budget × model × method configuration) through the train path, resumably.

A sweep dir holds ``sweep.json`` (the grid, written first), one run dir per finished cell under ``cells/`` and
``results.jsonl`` (one line per finished cell, appended as each finishes: recipe, FLOPs spent, final training
loss, held-out contrastive loss, wall time), so ``fit`` works at any time on what has finished. Finished cells
are skipped; a killed sweep continues where it stopped (the interrupted cell resumes from its checkpoints).
Cells run in this process by default, or each as its own job through submitit (:mod:`st_recipe.sweeps.jobs`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.outputs import check_folder
from st_recipe.planning.recipes import Recipe
from st_recipe.planning.scaling import PLOT_SUFFIXES, FittedLaw, Point, fit_points, plot_frontier
from st_recipe.run import read_run
from st_recipe.sweeps.results import RESULTS_FILE, append_result, collect_results, result_row

GRID_FILE = "sweep.json"


@dataclass(frozen=True)
class Cell:
    """One grid cell."""

    budget: float
    model: str
    method: str
    args: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """A stable folder name for the cell."""
        from st_recipe.planning.planner import budget_label

        model = os.path.basename(os.path.normpath(self.model.removeprefix("random:")))
        extra = "".join(f"-{k}{v}" for k, v in self.args)
        return f"{budget_label(self.budget)}-{model}-{self.method}{extra}"

    @property
    def config(self) -> str:
        """The method configuration as ``method(k=v)``."""
        inner = ", ".join(f"{k}={v}" for k, v in self.args)
        return f"{self.method}({inner})"


def grid_cells(budgets: list[float], models: list[str], methods: list[str], *, ranks: list[int] | None = None,
               fractions: list[float] | None = None, axes: dict[str, list[Any]] | None = None) -> list[Cell]:
    """Every cell of the grid: each method once per value of its sweep axis (LoRA's rank, freezing's fraction...).

    ``axes`` maps a method name to the values of its axis (``Method.sweep_axis`` names the argument and its
    default values); ``ranks`` and ``fractions`` are the same for ``lora`` and ``freeze``.
    """
    from st_recipe.costing.flops import check_budget
    from st_recipe.methods import get_method, get_method_class
    from st_recipe.models.args import parse_model_spec

    if not budgets or not models or not methods:
        raise StRecipeError("the grid is empty: give at least one budget, one model and one method")
    budgets = [check_budget(b) for b in budgets]
    for m in models:
        parse_model_spec(m)
    axes = dict(axes or {})
    if ranks:
        axes["lora"] = list(ranks)
    if fractions:
        axes["freeze"] = list(fractions)
    # Axis values only expand their own method; given without it they would silently do nothing.
    for name in axes:
        if name not in methods:
            what = {"lora": "ranks", "freeze": "fractions"}.get(name, f"values for {name!r}")
            raise StRecipeError(f"{what} were given but {name!r} is not among the methods")
    configs: list[tuple[str, tuple[tuple[str, Any], ...]]] = []
    for method in methods:
        axis = get_method_class(method).sweep_axis
        if axis is None:
            if method in axes:
                raise StRecipeError(f"method {method!r} has no sweep axis, so it takes no values")
            configs.append((method, ()))
            continue
        arg, default = axis
        configs += [(method, ((arg, v),)) for v in axes.get(method) or default]
    for method, args in configs:
        get_method(method, **dict(args))
    cells = [Cell(b, m, meth, args) for b, m, (meth, args) in itertools.product(sorted(budgets), models, configs)]
    names = [c.name for c in cells]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StRecipeError(f"the grid lists cell {repeated[0]} more than once; give each budget, model, method, "
                            "rank and fraction once")
    return cells


def _grid_spec(cells: list[Cell], data: str, batch_size: int | None, extra: dict[str, Any]) -> dict[str, Any]:
    return {"cells": [c.name for c in cells], "data": data, "batch_size": batch_size, **extra}


def prepare_sweep(
    budgets: list[float],
    models: list[str],
    methods: list[str],
    *,
    out: str | os.PathLike[str],
    data: str = "builtin",
    ranks: list[int] | None = None,
    fractions: list[float] | None = None,
    batch_size: int | None = None,
    max_seq_length: int | None = None,
    learning_rate: float | None = None,
) -> tuple[list[tuple[Cell, Recipe]], dict[str, Any]]:
    """Check a whole sweep without writing anything: every cell's recipe, the sweep dir and its saved grid.

    Everything here is cheap (no torch), so a bad grid fails before the first cell trains rather than
    halfway through the sweep.
    """
    from st_recipe.planning.builder import build_recipe

    cells = grid_cells(budgets, models, methods, ranks=ranks, fractions=fractions)
    # The same plan-then-override path as `train`: flags given for the whole grid override every cell.
    planned = [(cell, build_recipe(budget=cell.budget, model=cell.model, method=cell.method,
                                   method_args=dict(cell.args), batch_size=batch_size,
                                   max_seq_length=max_seq_length, learning_rate=learning_rate))
               for cell in cells]
    spec = _grid_spec(cells, data, batch_size, {"max_seq_length": max_seq_length, "learning_rate": learning_rate})
    check_sweep_dir(out, spec)
    return planned, spec


def check_sweep_dir(out: str | os.PathLike[str], spec: dict[str, Any]) -> None:
    """Refuse a sweep dir that is a file, lies under a file or holds another grid (nothing is written)."""
    check_folder(out, "sweep dir", empty="the sweep dir (--out) must not be empty")
    root = Path(out)
    grid_path = root / GRID_FILE
    if grid_path.is_file():
        try:
            saved = json.loads(grid_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise StRecipeError(f"{str(grid_path)!r} is not readable JSON ({exc}); use a new --out") from None
        if saved != spec:
            raise StRecipeError(f"sweep dir {str(root)!r} holds a different grid; use a new --out or the same flags")


class SweepIncomplete(StRecipeError):
    """Some cells failed: the others finished (``rows``); each failure names its log."""

    def __init__(self, rows: list[dict[str, Any]], failures: list[Any]) -> None:
        self.rows, self.failures = rows, failures
        super().__init__(f"{len(failures)} cell(s) failed ({'; '.join(f.line() for f in failures[:3])}"
                         f"{' ...' if len(failures) > 3 else ''}); {len(rows)} finished; re-run the same command to retry")


def sweep(
    budgets: list[float],
    models: list[str],
    methods: list[str],
    *,
    out: str | os.PathLike[str],
    data: str = "builtin",
    ranks: list[int] | None = None,
    fractions: list[float] | None = None,
    batch_size: int | None = None,
    max_seq_length: int | None = None,
    learning_rate: float | None = None,
    quiet: bool = False,
    jobs: Any = None,
    report_to: tuple[str, ...] = (),
    prepared: tuple[list[tuple[Cell, Recipe]], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Run (or continue) the grid; returns one result row per finished cell, in grid order.

    ``jobs`` (a :class:`~st_recipe.sweeps.jobs.JobOptions`) runs each cell as a local or SLURM job; then a failed
    cell does not stop the others, and :class:`SweepIncomplete` lists the failures at the end. ``report_to``
    logs every cell to those trackers under one group named after the sweep dir. ``prepared`` (cells with their
    recipes and the grid spec, e.g. from :func:`st_recipe.sweeps.plan.paper_sweep`) replaces the grid arguments.
    """
    planned, spec = prepared or prepare_sweep(budgets, models, methods, out=out, data=data, ranks=ranks,
                                              fractions=fractions, batch_size=batch_size,
                                              max_seq_length=max_seq_length, learning_rate=learning_rate)
    root = Path(out)
    try:
        root.mkdir(parents=True, exist_ok=True)
        grid_path = root / GRID_FILE
        if not grid_path.is_file():
            from st_recipe._io import atomic_write_text

            atomic_write_text(grid_path, json.dumps(spec, indent=2))
    except OSError as exc:
        raise StRecipeError(f"cannot write the sweep dir {str(root)!r}: {exc.strerror or exc}") from None
    failures: list[Any] = []
    if jobs is not None and jobs.jobs:
        import sys

        from st_recipe.sweeps.jobs import run_jobs

        failures = run_jobs(planned, root, data, jobs, report_to=tuple(report_to),
                            say=None if quiet else (lambda text: print(f"sweep: {text}", file=sys.stderr, flush=True)))
    else:
        _run_here(planned, root, data, tuple(report_to), quiet)
    rows = collect_results(root, [c for c, _ in planned])
    if failures:
        raise SweepIncomplete(rows, failures)
    return rows


def _run_here(planned: list[tuple[Cell, Recipe]], root: Path, data: str, report_to: tuple[str, ...], quiet: bool) -> None:
    """Every unfinished cell, one after another in this process; each appends its row when it finishes."""
    from tqdm.auto import tqdm

    from st_recipe.sweeps.jobs import cell_tracking
    from st_recipe.training import TrainOptions, checkpoint_dir, train

    bar = tqdm(planned, desc="sweep", unit="cell", disable=quiet)
    for cell, recipe in bar:
        run_dir = root / "cells" / cell.name
        bar.set_postfix_str(cell.name)
        if not (run_dir / "st_recipe.json").exists():
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            train(recipe, data, TrainOptions(out=run_dir, resume=checkpoint_dir(run_dir).exists(), quiet=True,
                                             tracking=cell_tracking(root, cell.name, report_to)))
            append_result(root, result_row(cell, read_run(run_dir)))


def load_points(sweep_dir: str | os.PathLike[str], *, metric: str = "heldout_loss") -> list[Point]:
    """Fit-ready points from a sweep dir's finished cells."""
    root = Path(sweep_dir)
    results = root / RESULTS_FILE
    if not root.is_dir():
        raise StRecipeError(f"sweep dir {str(root)!r} does not exist")
    lines = []
    if results.is_file():
        try:
            lines = [line for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise StRecipeError(f"cannot read {str(results)!r}: {exc}") from None
    if not lines:
        raise StRecipeError(f"{str(root)!r} has no finished cells ({RESULTS_FILE} is missing or empty); run st-recipe sweep first")
    points, names = [], []
    for number, line in enumerate(lines, 1):
        try:
            r = json.loads(line)
            names.append(str(r.get("cell", f"line {number}")))
            value = r.get(metric)
            if value is None:
                raise StRecipeError(f"cell {r.get('cell', number)} in {str(results)!r} has no {metric}")
            points.append(Point(method=r["method"], model=r["model"], budget=float(r["budget"]), loss=float(value),
                                n_params=int(r["n_params"]), pairs=int(r["pairs"]), config=r.get("config", "")))
        except StRecipeError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise StRecipeError(f"{str(results)!r} line {number} is not a sweep result ({type(exc).__name__}: {exc}); "
                                "re-run st-recipe sweep to rewrite it") from None
    _refuse_non_finite([name for name, p in zip(names, points) if not _finite(p)], metric, results)
    return points


def _finite(p: Point) -> bool:
    return math.isfinite(p.loss) and p.loss > 0 and math.isfinite(p.budget) and p.budget > 0


def _refuse_non_finite(bad: list[str], metric: str, results: Path) -> None:
    """A diverged cell (NaN/inf loss) would give a law with slope nan and a perfect-looking R²."""
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise StRecipeError(f"{len(bad)} cell(s) in {str(results)!r} have a non-finite or non-positive {metric}: "
                            f"{shown}; re-run them or remove their lines before fitting")


def _refuse_sweep_input(root: Path, path: Path, flag: str) -> None:
    """Fit reads the sweep's results and grid: writing over them would destroy the sweep itself."""
    for name in (RESULTS_FILE, GRID_FILE):
        own = root / name
        if own.exists() and path.exists() and os.path.samefile(own, path):
            raise StRecipeError(f"{flag} {str(path)!r} is the sweep's own {name}; choose another file")


@dataclass(frozen=True)
class FitResult:
    """What ``fit`` wrote: the law, the points it came from, and the two files."""

    law: FittedLaw
    points: list[Point]
    law_path: Path
    plot_path: Path


def fit(sweep_dir: str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None,
        plot: str | os.PathLike[str] | None = None, metric: str = "heldout_loss", overwrite: bool = False) -> FitResult:
    """The paper's algorithm on a sweep: per-method laws, frontier and crossovers; writes fitted.yaml and a plot.

    A file named by ``out`` or ``plot`` that exists is replaced only with ``overwrite``; the sweep's own
    results and grid files never are.
    """
    import yaml

    from st_recipe._io import write_together
    from st_recipe.outputs import check_file

    points = load_points(sweep_dir, metric=metric)
    law_path = check_file(out, Path(sweep_dir) / "fitted.yaml", "--out", overwrite=overwrite)
    plot_path = check_file(plot, Path(sweep_dir) / "frontier.png", "--plot", overwrite=overwrite)
    for flag, path in (("--out", law_path), ("--plot", plot_path)):
        _refuse_sweep_input(Path(sweep_dir), path, flag)
    if plot_path.suffix.lower() not in PLOT_SUFFIXES:
        raise StRecipeError(f"--plot {str(plot_path)!r}: give an image file name ending in {', '.join(PLOT_SUFFIXES)}")
    if law_path == plot_path:
        raise StRecipeError("--out and --plot name the same file")
    law = fit_points(points, source=str(sweep_dir))
    text = ("# Written by st-recipe fit: log10(loss) = intercept + slope * log10(budget) per method (provenance: fitted).\n"
            + yaml.safe_dump({"fitted": law.to_dict()}, sort_keys=False))
    title = f"Frontier from {Path(sweep_dir).name} ({metric})"
    write_together(law_path, text, plot_path, lambda tmp: plot_frontier(law, points, tmp, title=title))
    return FitResult(law, points, law_path, plot_path)
