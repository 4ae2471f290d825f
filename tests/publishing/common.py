"""Shared pieces of the publish tests: sample inputs, run-dir edits, and the driver that runs CLI calls."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.hub_server import HubServer
from tests.test_hub_server import run_client

PUBLIC = "org/tiny-embed"
PRIVATE = "org/tiny-embed-private"
SENTENCES = ["a short sentence about cats", "another sentence, a little longer than the first", "x"]
MODEL_FILES = {
    "1_Pooling/config.json", "config.json", "config_sentence_transformers.json", "model.safetensors", "modules.json",
    "sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json",
}
RANDOM_BASE = {"model": "random:pythia-14m", "load_id": "random:pythia-14m", "random_init": True}
GENERATED = {"README.md", "st_recipe.json", "eval_results.json", "mteb_model_meta.json", "assets/training_loss.png"}

_DRIVER = """
from click.testing import CliRunner
from st_recipe.cli import main

answers = []
for call in json.loads(Path("CALLS").read_text()):
    r = CliRunner().invoke(main, call["args"], env=call.get("env"))
    crash = None if r.exception is None or isinstance(r.exception, SystemExit) else repr(r.exception)
    answers.append({"name": call["name"], "code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr, "crash": crash})
result(answers)
"""


def run_driver(hub: HubServer, calls: Path, hf_home: Path, **env: str) -> list[dict[str, Any]]:
    """Run the CLI calls listed in ``calls`` in a row, in one subprocess pointed at ``hub``."""
    return run_client(hub, _DRIVER.replace("CALLS", str(calls)), hf_home, timeout=300, **env)


def sample_results(path: Path, model_name: str = PUBLIC, *, with_base: bool = True) -> dict[str, Any]:
    """An eval summary in the schema `st-recipe eval` writes: two mteb tasks, one local task, a base model."""

    def row(task: str, kind: str, metric: str, score: float, subsets: list[str], source: str = "mteb") -> dict[str, Any]:
        return {"task": task, "type": kind, "main_score_name": metric, "main_score": score, "split": "test",
                "subsets": subsets, "languages": ["eng-Latn"], "source": source, "cached": False}

    summary = {
        "schema": "st-recipe/eval-summary/1", "model_name": model_name, "revision": "sha256-0123456789abcdef",
        "tasks": [row("BIOSSES", "STS", "cosine_spearman", 0.41234, ["default"]),
                  row("STS22", "STS", "cosine_spearman", 0.30125, ["en"]),
                  row("Banking77Classification", "Classification", "accuracy", 0.55671, ["default"]),
                  row("my-sts", "STS", "cosine_spearman", 0.25, ["default"], source="local")],
        "averages": {"overall": 0.38}, "failed": [],
        "base": None,
    }
    if with_base:
        summary["base"] = {"model_name": "local/tiny-neox", "revision": "sha256-aaaa", "averages": {}, "failed": [],
                           "tasks": [row("BIOSSES", "STS", "cosine_spearman", 0.2, ["default"]),
                                     row("Banking77Classification", "Classification", "accuracy", 0.3, ["default"])]}
    path.write_text(json.dumps(summary, indent=2))
    return summary


LONG_ERROR = ("could not load its data from the Hub (Couldn't reach 'mteb/{task}' on the Hub (LocalEntryNotFoundError) "
              + "x" * 150 + "); offline? evaluate a local copy with --task-file")


def all_failed_results(path: Path, scored: list[dict[str, Any]] | None = None) -> Path:
    """A summary as an offline `eval --benchmark paper-15` leaves it: 15 long failures, and `scored` rows if given."""
    from st_recipe.evaluation import PAPER_15_TASKS

    failed = [{"task": t, "error": LONG_ERROR.format(task=t), "score_kept": any(r["task"] == t for r in scored or [])}
              for t in PAPER_15_TASKS]
    path.write_text(json.dumps({"schema": "st-recipe/eval-summary/1", "model_name": PUBLIC, "revision": "sha256-x",
                                "tasks": scored or [], "averages": {}, "failed": failed, "base": None}))
    return path


def write_frontier(path: Path) -> Path:
    """A fitted-law file as `st-recipe fit` writes it, from a small synthetic sweep around the run's budget."""
    import yaml

    from st_recipe.planning.scaling import Point, fit_points

    points = [Point("full", "m", b, 30 * b ** -0.1, 1000, 1) for b in (1e8, 1e9, 1e10)]
    points += [Point("lora", "m", b, 20 * b ** -0.08, 1000, 1) for b in (1e8, 1e9, 1e10)]
    path.write_text(yaml.safe_dump({"fitted": fit_points(points, source="a synthetic sweep").to_dict()}))
    return path


def copy_run(run_dir: Path, dst: Path) -> Path:
    """A private copy of the run dir for a test that changes it."""
    shutil.copytree(run_dir, dst)
    return dst


def edit_record(run: Path, **changes: Any) -> None:
    rec = json.loads((run / "st_recipe.json").read_text())
    rec.update(changes)
    (run / "st_recipe.json").write_text(json.dumps(rec))


def all_text(root: Path) -> Iterator[tuple[Path, bytes]]:
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            yield p, p.read_bytes()


def dry(run: Path, target: Path, *extra: str):
    """`st-recipe publish RUN --repo PUBLIC --dry-run TARGET ...` in-process."""
    from click.testing import CliRunner

    from st_recipe.cli import main

    return CliRunner().invoke(main, ["publish", str(run), "--repo", PUBLIC, "--dry-run", str(target), *extra])


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): data for p, data in all_text(root)}
