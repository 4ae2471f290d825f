"""A sweep's results: one ``results.jsonl`` line per finished cell, appended as each cell finishes.

Jobs finishing together append under a lock, each line in one write, and a cell already there is never
added twice; so ``fit`` can read the file at any time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.run import RunRecord, read_run

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no parallel jobs there, so no concurrent appends
    fcntl = None  # type: ignore[assignment]

RESULTS_FILE = "results.jsonl"


def collect_results(root: Path, cells: list[Any]) -> list[dict[str, Any]]:
    """The rows of the finished cells, in grid order; a finished cell missing from results.jsonl is appended."""
    rows = []
    for cell in cells:
        run_dir = root / "cells" / cell.name
        if (run_dir / "st_recipe.json").exists():
            rows.append(result_row(cell, read_run(run_dir)))
            append_result(root, rows[-1])  # a job killed between its run dir and its row leaves it out
    return rows


def append_result(root: Path, row: dict[str, Any]) -> bool:
    """Append ``row`` to results.jsonl unless its cell is there already (under a lock, in one write); True if added."""
    path = root / RESULTS_FILE
    with open(root / (RESULTS_FILE + ".lock"), "a+") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # jobs finishing together append one after the other
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("cell") == row["cell"]:
                        return False
                except (ValueError, AttributeError):
                    continue  # a damaged line is load_points' to report
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(row) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    return True


def result_row(cell: Any, rec: RunRecord) -> dict[str, Any]:
    """The results.jsonl line of a finished cell."""
    losses = rec.loss.per_step
    tail = losses[-max(1, len(losses) // 10):]
    after = rec.heldout.after
    return {
        "cell": cell.name,
        "budget": cell.budget,
        "model": cell.model,
        "method": cell.method,
        "config": cell.config,
        "n_params": _base_params(cell.model, rec),
        "n_trainable": rec.method.n_trainable,
        "pairs": rec.pairs_seen,
        "flops_spent": rec.flops.spent,
        "spent_fraction": rec.flops.spent_fraction,
        "train_loss": sum(tail) / len(tail) if tail else None,
        "heldout_loss": after.infonce if after else None,
        "heldout_top1": after.top1_accuracy if after else None,
        "wall_time_s": rec.wall_time_s,
        "recipe": rec.recipe,
    }


def _base_params(model: str, rec: RunRecord) -> int:
    """The base model's non-embedding parameters (adapters excluded), for model-size trends."""
    from st_recipe.models.args import parse_model_spec

    try:
        spec = parse_model_spec(model).spec
    except StRecipeError:
        spec = None
    return spec.n_params if spec is not None else rec.method.n_params
