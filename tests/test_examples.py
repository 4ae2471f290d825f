"""Every script in examples/ runs offline on the tiny path (--offline), as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{args}: {proc.stderr[-3000:]}"
    return proc.stdout


def test_examples_run_offline_end_to_end(tmp_path):
    ex = REPO / "examples"
    out = _run(str(ex / "plan_budget.py"), "--budget", "1e17", "--max-memory", "24GB", cwd=tmp_path)
    assert "provenance" not in out and "paper:" in out and "heuristic:" in out
    run = tmp_path / "run"
    out = _run(str(ex / "train.py"), "--offline", "--out", str(run), cwd=tmp_path)
    assert "FLOPs spent" in out and "embedding shape: (1, 128)" in out
    out = _run(str(ex / "evaluate.py"), str(run), "--offline", cwd=tmp_path)
    assert "docstring-sts" in out.lower() or "average" in out.lower()
    out = _run(str(ex / "publish.py"), str(run), "--repo", "example-org/tiny-example", "--offline", cwd=tmp_path)
    assert (tmp_path / "run.upload" / "README.md").exists()
    out = _run(str(ex / "semantic_search.py"), "--model", str(run), "--offline", cwd=tmp_path)
    assert out.count("->") == 3
    out = _run(str(ex / "sweep_and_fit.py"), "--offline", "--out", str(tmp_path / "sweep"), cwd=tmp_path)
    assert "log10(loss)" in out and (tmp_path / "sweep" / "frontier.png").exists()
