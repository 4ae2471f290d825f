"""What train checks before torch: the default run dir, the data (a file is read now), enough pairs, the folder."""

from __future__ import annotations

import json
import sys

import pytest

from st_recipe.errors import StRecipeError
from st_recipe.planning.recipes import Recipe
from st_recipe.training.precheck import check_train_inputs, default_out


def _recipe(**kw):
    return Recipe(**{"model": "random:pythia-14m", "method": "lora", "pairs": 64, "batch_size": 8, "budget": 2e10,
                     **kw})


def _pairs(path, n):
    path.write_text("".join(json.dumps({"anchor": f"q{i}", "positive": f"p{i}"}) + "\n" for i in range(n)))
    return str(path)


def test_the_default_run_dir_names_model_method_and_budget():
    assert default_out(_recipe()) == "runs/random-pythia-14m-lora-2e10"


def test_a_local_file_is_read_and_returned_as_pairs(tmp_path):
    out, pairs = check_train_inputs(_recipe(), _pairs(tmp_path / "p.jsonl", 100), str(tmp_path / "run"))
    assert out == str(tmp_path / "run") and len(pairs) == 100
    assert not (tmp_path / "run").exists()  # checked, not created


def test_builtin_and_no_out_pass_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_train_inputs(_recipe(), "builtin", None) == ("runs/random-pythia-14m-lora-2e10", "builtin")


def test_the_checks_import_no_torch(tmp_path):
    import subprocess

    code = ("import sys; from st_recipe.training.precheck import check_train_inputs; "
            "from st_recipe.planning.recipes import Recipe; "
            "check_train_inputs(Recipe(model='random:pythia-14m', method='lora', pairs=64, batch_size=8, budget=2e10), "
            f"'builtin', {str(tmp_path / 'run')!r}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_too_few_pairs_after_the_held_out_share_is_one_line(tmp_path):
    with pytest.raises(StRecipeError, match="only 3 pairs"):
        check_train_inputs(_recipe(), _pairs(tmp_path / "p.jsonl", 3), str(tmp_path / "run"))


def test_a_missing_file_and_an_existing_run_dir_are_one_line(tmp_path):
    with pytest.raises(StRecipeError, match="data file not found"):
        check_train_inputs(_recipe(), str(tmp_path / "nope.jsonl"), str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x").write_text("x")
    with pytest.raises(StRecipeError, match="already exists; pass --overwrite"):
        check_train_inputs(_recipe(), _pairs(tmp_path / "p.jsonl", 100), str(tmp_path / "run"))
    with pytest.raises(StRecipeError, match="neither an earlier st-recipe run dir"):  # --overwrite replaces runs only
        check_train_inputs(_recipe(), _pairs(tmp_path / "p.jsonl", 100), str(tmp_path / "run"), overwrite=True)
