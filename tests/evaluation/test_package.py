"""The evaluation package: light to import; the test setup leaves nothing in /tmp."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_import_stays_light() -> None:
    code = "import sys, st_recipe.evaluation; print(sorted({'torch', 'mteb', 'sentence_transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_test_module_leaves_nothing_in_tmp(tmp_path: Path) -> None:
    """Importing the evaluation tests' conftest (as every pytest run of them does) makes mteb's default cache folder; it must not outlive the run."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MTEB_CACHE"} | {"TMPDIR": str(tmp)}
    code = "import os, tests.evaluation.conftest; assert os.path.isdir(os.environ['MTEB_CACHE']), os.environ['MTEB_CACHE']"
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], env=env, check=True)
    assert list(tmp.iterdir()) == []
