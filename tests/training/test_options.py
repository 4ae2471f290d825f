"""TrainOptions: the defaults train always had, each option checked in one line, keyword overrides, unknown names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from st_recipe import StRecipeError
from st_recipe.planning.recipes import Recipe
from st_recipe.training import TrainOptions, train
from st_recipe.training.dev_eval import DevEval
from st_recipe.training.tracking import Tracking


def _recipe() -> Recipe:
    return Recipe(model="random:pythia-14m", method="full", pairs=64, batch_size=8)


def test_the_defaults_are_trains_old_keyword_defaults():
    assert dataclasses.asdict(TrainOptions()) == {
        "out": None, "resume": False, "overwrite": False, "gradient_checkpointing": False, "save_steps": None,
        "keep_checkpoints": False, "quiet": False, "anchor_column": None, "positive_column": None, "repo_id": None,
        "padding_free": True, "tracking": None, "dev_eval": None, "mine_negatives": False, "mining_in_budget": False,
    }


def test_options_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainOptions().quiet = True  # type: ignore[misc]


def test_valid_options_are_kept(tmp_path):
    opts = TrainOptions(out=tmp_path / "run", save_steps=5, anchor_column="q", positive_column="d", repo_id="org/m",
                        tracking=Tracking(("tensorboard",)), dev_eval=DevEval("builtin:sts"), padding_free=False)
    assert opts.out == tmp_path / "run" and opts.save_steps == 5 and opts.tracking.report_to == ("tensorboard",)


@pytest.mark.parametrize("changes, message", [
    ({"save_steps": 0}, "save_steps must be an integer >= 1, not 0"),
    ({"save_steps": -5}, "save_steps must be an integer >= 1, not -5"),
    ({"save_steps": 2.5}, "save_steps must be an integer >= 1, not 2.5"),
    ({"save_steps": True}, "save_steps must be an integer >= 1, not True"),
    ({"resume": "yes"}, "resume must be True or False, not 'yes'"),
    ({"padding_free": 1}, "padding_free must be True or False, not 1"),
    ({"out": ""}, "the output folder (--out) must not be empty"),
    ({"out": 3}, "out must be a folder path, not int"),
    ({"anchor_column": 0}, "anchor_column must be a string, not 0"),
    ({"tracking": "wandb"}, "tracking must be a st_recipe.training.tracking.Tracking, not str"),
    ({"dev_eval": "sts.tsv"}, "dev_eval must be a st_recipe.training.dev_eval.DevEval, not str"),
])
def test_a_bad_option_is_one_line(changes, message):
    with pytest.raises(StRecipeError) as info:
        TrainOptions(**changes)
    assert str(info.value) == message


def test_overrides_apply_to_the_defaults_or_to_given_options(tmp_path):
    assert TrainOptions.resolve(None, {"quiet": True}) == TrainOptions(quiet=True)
    base = TrainOptions(out=tmp_path / "a", save_steps=3)
    assert TrainOptions.resolve(base, {"quiet": True, "out": tmp_path / "b"}) == TrainOptions(
        out=tmp_path / "b", save_steps=3, quiet=True)
    assert TrainOptions.resolve(base, {}) is base
    with pytest.raises(StRecipeError, match="save_steps must be an integer >= 1, not 0"):
        TrainOptions.resolve(base, {"save_steps": 0})  # overrides are checked like the options


def test_a_folder_in_place_of_the_options_is_one_line_pointing_at_out(tmp_path):
    with pytest.raises(StRecipeError, match=r"options must be a TrainOptions, not a path: pass the output folder as out="):
        TrainOptions.resolve(tmp_path / "run", {"quiet": True})
    with pytest.raises(StRecipeError, match="out='runs/x'"):
        TrainOptions.resolve("runs/x", None)


@pytest.mark.parametrize("options, message", [
    ({"quiet": True}, "options must be a TrainOptions, not dict"),
    (7, "options must be a TrainOptions, not int"),
])
def test_options_of_another_type_are_one_line(options, message):
    with pytest.raises(StRecipeError, match=message):
        TrainOptions.resolve(options, {})


def test_an_unknown_keyword_is_one_line_naming_it_and_writes_nothing(tmp_path):
    with pytest.raises(StRecipeError) as info:
        train(_recipe(), "builtin", out=tmp_path / "run", qiet=True)
    assert str(info.value) == "train() got an unknown option 'qiet' (did you mean quiet?)"
    with pytest.raises(StRecipeError, match="unknown option 'epochs' \\(choose from out, resume, "):
        train(_recipe(), "builtin", TrainOptions(out=tmp_path / "run"), epochs=3)
    assert list(tmp_path.iterdir()) == []  # checked before the output lock or folder


def test_train_runs_the_resolved_options_under_the_output_lock(tmp_path, monkeypatch):
    import st_recipe.training.orchestrate as orchestrate

    seen = []
    monkeypatch.setattr(orchestrate, "_train", lambda recipe, data, opts: seen.append((data, opts)) or "done")
    out = tmp_path / "runs" / "run"
    assert train(_recipe(), "pairs.jsonl", TrainOptions(out=out, save_steps=4), quiet=True) == "done"
    assert seen == [("pairs.jsonl", TrainOptions(out=out, save_steps=4, quiet=True))]
    assert train(_recipe(), out=out, keep_checkpoints=True) == "done"  # keywords alone, data builtin
    assert seen[1] == ("builtin", TrainOptions(out=out, keep_checkpoints=True))
    assert Path(out).parent.is_dir()  # the lock's folder was made
