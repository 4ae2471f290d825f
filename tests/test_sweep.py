"""A small real sweep on tiny models on CPU, resumable, then fit and plan --fitted through the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from st_recipe import StRecipeError
from st_recipe.cli import main
from st_recipe.sweep import grid_cells, load_points, sweep


def test_grid_expands_ranks_and_fractions():
    cells = grid_cells([1e15, 4e15], ["pythia-14m"], ["lora", "freeze", "full"], ranks=[8, 32], fractions=[0.25])
    assert [c.config for c in cells[:4]] == ["lora(r=8)", "lora(r=32)", "freeze(fraction=0.25)", "full()"]
    assert len(cells) == 8 and len({c.name for c in cells}) == 8


@pytest.mark.parametrize("kwargs, needle", [
    (dict(budgets=[], models=["pythia-14m"], methods=["full"]), "empty"),
    (dict(budgets=[1e15], models=["pythia-14m"], methods=["nope"]), "unknown method"),
    (dict(budgets=[1e15], models=["pythia-99m"], methods=["full"]), "unknown model"),
    (dict(budgets=["abc"], models=["pythia-14m"], methods=["full"]), "budget"),
])
def test_bad_grids(kwargs, needle):
    with pytest.raises(StRecipeError, match=needle):
        grid_cells(**kwargs)


def test_small_real_sweep_resumes_and_fits(tiny_neox_dir, tmp_path):
    out = tmp_path / "sweep"
    args = dict(out=out, batch_size=16, max_seq_length=32, learning_rate=1e-3, quiet=True)
    rows = sweep([2e9, 8e9], [str(tiny_neox_dir)], ["full", "bias"], **args)
    assert len(rows) == 4
    for r in rows:
        assert 0.99 <= r["spent_fraction"] <= 1.0 and r["heldout_loss"] > 0 and r["train_loss"] > 0
    # Finished cells are skipped: a second call trains nothing and returns the same rows.
    again = sweep([2e9, 8e9], [str(tiny_neox_dir)], ["full", "bias"], **args)
    assert [r["wall_time_s"] for r in again] == [r["wall_time_s"] for r in rows]
    with pytest.raises(StRecipeError, match="different grid"):
        sweep([2e9], [str(tiny_neox_dir)], ["full"], **args)
    assert len(load_points(out)) == 4

    runner = CliRunner()
    fitted = runner.invoke(main, ["fit", str(out), "--json"])
    assert fitted.exit_code == 0, fitted.output
    law = json.loads(fitted.output)["fitted"]
    assert set(law["methods"]) == {"full", "bias"}
    assert (out / "fitted.yaml").exists() and (out / "frontier.png").stat().st_size > 5000
    planned = runner.invoke(main, ["plan", "--budget", "3e10", "--fitted", str(out / "fitted.yaml"),
                                   "--model", str(tiny_neox_dir), "--batch-size", "16", "--json"])
    assert planned.exit_code == 0, planned.output
    recipe = json.loads(planned.output)
    assert recipe["provenance"]["method"]["source"] == "fitted"
    assert recipe["method"] in {"full", "bias"}


def test_fit_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["fit", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(main, ["fit", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no finished cells" in result.output
