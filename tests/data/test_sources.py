"""Tests for st_recipe.data.sources (classifying --data values) and the package's public face."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from st_recipe import data
from st_recipe.data import load_pairs
from st_recipe.errors import StRecipeError
from tests.data.kit import error_text


def test_missing_file_and_unknown_sources(tmp_path: Path) -> None:
    with pytest.raises(StRecipeError, match="not found"):
        load_pairs(str(tmp_path / "nope.jsonl"))
    with pytest.raises(StRecipeError, match="not found"):
        load_pairs("./data/pairs")
    with pytest.raises(StRecipeError) as exc:
        load_pairs("nonsense")
    assert "builtin" in error_text(exc) and "Hub dataset id" in error_text(exc)
    with pytest.raises(StRecipeError, match="directory"):
        load_pairs(str(tmp_path))
    (tmp_path / "pairs.txt").write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(StRecipeError, match="unsupported file type"):
        load_pairs(str(tmp_path / "pairs.txt"))


def test_import_stays_light() -> None:
    import subprocess

    code = "import st_recipe.data, sys; print(sorted(m for m in ('datasets', 'pandas', 'pyarrow', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_module_documents_the_batch_sampler() -> None:
    assert data.BATCH_SAMPLER == "no_duplicates"
    assert "NO_DUPLICATES" in (data.__doc__ or "")
    assert re.search(r"first\*? positive", data.__doc__ or "")
