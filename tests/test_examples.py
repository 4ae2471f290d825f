"""Every script in examples/ runs offline on the tiny path (--offline), as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
# Far above what a loaded 2-core machine needs (each script runs in well under a minute idle).
TIMEOUT_S = 1200


def _run(*args: str, cwd: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"{args}: {proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run dir from examples/train.py, shared by the examples that read a run."""
    cwd = tmp_path_factory.mktemp("examples")
    out = _run(str(EXAMPLES / "train.py"), "--offline", "--out", str(cwd / "run"), cwd=cwd)
    assert "FLOPs spent" in out and "embedding shape: (1, 128)" in out
    return cwd / "run"


@pytest.fixture(scope="module")
def evaluated(trained: Path) -> str:
    """examples/evaluate.py on the shared run (publish needs its eval_results.json: no card without scores)."""
    return _run(str(EXAMPLES / "evaluate.py"), str(trained), "--offline", cwd=trained.parent)


def test_plan_budget(tmp_path):
    out = _run(str(EXAMPLES / "plan_budget.py"), "--budget", "1e17", "--max-memory", "24GB", cwd=tmp_path)
    assert "provenance" not in out and "paper:" in out and "heuristic:" in out


def test_evaluate(evaluated):
    out = evaluated
    assert "docstring-sts" in out.lower() or "average" in out.lower()


def test_publish_dry_run(trained, evaluated):
    _run(str(EXAMPLES / "publish.py"), str(trained), "--repo", "example-org/tiny-example", "--offline",
         cwd=trained.parent)
    assert (trained.parent / "run.upload" / "README.md").exists()


def test_semantic_search(trained):
    out = _run(str(EXAMPLES / "semantic_search.py"), "--model", str(trained), "--offline", cwd=trained.parent)
    assert out.count("->") == 3


def test_sweep_and_fit(tmp_path):
    out = _run(str(EXAMPLES / "sweep_and_fit.py"), "--offline", "--out", str(tmp_path / "sweep"), cwd=tmp_path)
    assert "log10(loss)" in out and (tmp_path / "sweep" / "frontier.png").exists()
