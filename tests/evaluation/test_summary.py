"""The saved summary: eval_results.json merges per task, and failures keep earlier scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.evaluation.helpers import invoke


def test_cli_eval_merges_per_task_and_failures_keep_earlier_scores(
    fresh_run: Path, sts_file: Path, retrieval_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported loss: an offline paper-15 after a good eval left 0 tasks. Each run now only adds to the file."""
    saved_path = fresh_run / "eval_results.json"
    # Scores of other weights (an earlier training into the same dir) are replaced, never mixed in.
    saved_path.write_text(json.dumps({
        "schema": "st-recipe/eval-summary/1", "model_name": "st-recipe/tiny-run", "revision": "sha256-otherweights",
        "tasks": [{"task": "OldTask", "type": "STS", "main_score_name": "cosine_spearman", "main_score": 0.9,
                   "split": "test", "subsets": ["default"], "languages": ["eng-Latn"]}], "failed": []}))
    first = invoke(str(fresh_run), "--task-file", str(sts_file), "--task-file", f"retrieval:{retrieval_dir}")
    assert first.exit_code == 0, first.output
    assert "another model or revision" in first.stdout
    good = json.loads(saved_path.read_text())
    scores = {t["task"]: t["main_score"] for t in good["tasks"]}
    assert list(scores) == ["tiny-sts", "tiny-retrieval"] and good["kept"] == []

    # Offline, every built-in task fails: the good scores stay, the failures are recorded beside them.
    offline = invoke(str(fresh_run), "--tasks", "BIOSSES,SICK-R")
    assert offline.exit_code == 1, offline.output
    saved = json.loads(saved_path.read_text())
    assert {t["task"]: t["main_score"] for t in saved["tasks"]} == scores
    assert saved["averages"]["n_tasks"] == 2 and saved["kept"] == ["tiny-sts", "tiny-retrieval"]
    assert [(f["task"], f["score_kept"]) for f in saved["failed"]] == [("BIOSSES", False), ("SICK-R", False)]
    # The printout is this run's: its two failures, and how many earlier scores the file keeps.
    assert not [ln for ln in offline.stdout.splitlines() if ln.startswith(("tiny-sts", "tiny-retrieval"))]
    assert "kept 2 earlier scores in eval_results.json" in offline.stdout

    # A task that scored before and fails now keeps its score; the failure says so.
    from sentence_transformers import SentenceTransformer

    def broken(self, *args, **kwargs):
        raise ValueError("encoder broke")

    monkeypatch.setattr(SentenceTransformer, "encode", broken)
    again = invoke(str(fresh_run), "--task-file", str(sts_file), "--overwrite")
    assert again.exit_code == 1, again.output
    assert "failed: tiny-sts: ValueError: encoder broke (the earlier score is kept)" in again.stdout
    saved = json.loads(saved_path.read_text())
    assert {t["task"]: t["main_score"] for t in saved["tasks"]} == scores
    assert {f["task"]: f["score_kept"] for f in saved["failed"]} == {"tiny-sts": True, "BIOSSES": False, "SICK-R": False}

    # Scoring it again replaces its row and clears its failure; the other tasks' entries stay.
    monkeypatch.undo()
    fixed = invoke(str(fresh_run), "--task-file", str(sts_file))
    assert fixed.exit_code == 0, fixed.output
    saved = json.loads(saved_path.read_text())
    assert [t["task"] for t in saved["tasks"]] == ["tiny-sts", "tiny-retrieval"]
    assert [f["task"] for f in saved["failed"]] == ["BIOSSES", "SICK-R"] and saved["kept"] == ["tiny-retrieval"]
