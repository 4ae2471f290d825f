"""The package's public surface: every exported name resolves, and ``from st_recipe import *`` works."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import st_recipe

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", st_recipe.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(st_recipe, name) is not None


def test_build_recipe_is_exported():
    from st_recipe.planning.builder import build_recipe

    assert "build_recipe" in st_recipe.__all__ and st_recipe.build_recipe is build_recipe


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        st_recipe.no_such_name  # noqa: B018


def test_star_import_works_in_a_fresh_process():
    # A fresh interpreter: the lazy __getattr__ path is what the star import exercises there.
    code = textwrap.dedent("""
        from st_recipe import *
        import st_recipe
        missing = [n for n in st_recipe.__all__ if n not in globals()]
        assert not missing, missing
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"
