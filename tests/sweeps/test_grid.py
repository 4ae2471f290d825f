"""A small real sweep on tiny models on CPU, resumable, then fit and plan --fitted through the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from st_recipe import StRecipeError
from st_recipe.cli import main
from st_recipe.sweeps.grid import grid_cells, load_points, sweep


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


@pytest.mark.parametrize("kwargs, needle", [
    (dict(methods=["full"], ranks=[8]), "'lora' is not among the methods"),
    (dict(methods=["full"], fractions=[0.25]), "'freeze' is not among the methods"),
    (dict(methods=["lora"], ranks=[8, 8]), "more than once"),
    (dict(methods=["lora"], ranks=[1.5]), "rank r must be an integer"),
])
def test_grids_that_would_silently_misbehave_are_refused(kwargs, needle):
    with pytest.raises(StRecipeError, match=needle):
        grid_cells([1e15], ["pythia-14m"], **kwargs)


def test_prepare_sweep_checks_every_cell_and_the_dir_without_writing(tmp_path):
    from st_recipe.sweeps.grid import prepare_sweep

    planned, spec = prepare_sweep([1e15, 4e15], ["random:pythia-14m"], ["full", "lora"], out=tmp_path / "sw",
                                  ranks=[8], batch_size=16, learning_rate=1e-3)
    assert [c.config for c, _ in planned] == ["full()", "lora(r=8)"] * 2
    assert all(r.batch_size == 16 and r.learning_rate == 1e-3 for _, r in planned)
    assert not (tmp_path / "sw").exists()
    # A budget too small for one cell fails before any cell trains, not halfway through the sweep.
    with pytest.raises(StRecipeError, match="the minimum is"):
        prepare_sweep([1e15, 1e9], ["random:pythia-14m"], ["full"], out=tmp_path / "sw")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StRecipeError, match="is a file"):
        prepare_sweep([1e15], ["random:pythia-14m"], ["full"], out=tmp_path / "file")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "sweep.json").write_text(json.dumps({"cells": ["other"]}))
    with pytest.raises(StRecipeError, match="different grid"):
        prepare_sweep([1e15], ["random:pythia-14m"], ["full"], out=tmp_path / "old")


def _results(folder, rows=((1e15, 2.0), (4e15, 1.6), (1.6e16, 1.3))):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"cell": f"c{i}", "budget": b, "model": "pythia-14m", "method": "full", "config": "full()",
                         "n_params": 1_189_888, "pairs": 100, "heldout_loss": loss, "train_loss": loss})
             for i, (b, loss) in enumerate(rows)]
    (folder / "results.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_fit_writes_yaml_and_plot_where_asked_and_leaves_no_temporaries(tmp_path):
    sweep_dir = _results(tmp_path / "sw")
    (tmp_path / "out").mkdir()
    result = CliRunner().invoke(main, ["fit", str(sweep_dir), "--out", str(tmp_path / "out" / "law.yaml"),
                                       "--plot", str(tmp_path / "out" / "law.svg")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["law.svg", "law.yaml"]
    assert (tmp_path / "out" / "law.svg").read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["results.jsonl"]


def test_fit_writes_nothing_when_the_plot_fails(tmp_path, monkeypatch):
    from st_recipe.sweeps import grid as sweep

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sweep, "plot_frontier", broken)
    sweep_dir = _results(tmp_path / "sw")
    result = CliRunner().invoke(main, ["fit", str(sweep_dir)])
    assert result.exit_code == 2 and "No space left on device" in result.output, result.output
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["results.jsonl"]


@pytest.mark.parametrize("args, needle", [
    (["--out", "{tmp}/missing/dir/x.yaml"], "does not exist"),
    (["--out", "{tmp}/sw"], "is a folder"),
    (["--plot", "{tmp}/frontier.yaml"], "ending in .png"),
    (["--out", "{tmp}/same.png", "--plot", "{tmp}/same.png"], "same file"),
])
def test_fit_output_paths_are_checked_before_writing(tmp_path, args, needle):
    sweep_dir = _results(tmp_path / "sw")
    result = CliRunner().invoke(main, ["fit", str(sweep_dir), *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == 2 and needle in result.output, result.output
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["results.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sw"]
