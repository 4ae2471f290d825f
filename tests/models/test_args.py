"""One owner per question: what a MODEL argument is (models.args) and whether an output folder may be written (outputs, run.RunDir)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from st_recipe import StRecipeError
from st_recipe.models.args import ModelRef, classify_model, compare_base_record, locate_model, parse_model_spec
from st_recipe.outputs import check_folder
from st_recipe.run import RUN_RECORD, RunDir


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    config = {"model_type": "gpt_neox", "hidden_size": 128, "num_hidden_layers": 6, "vocab_size": 50304}
    for name, files in {"hf": ["config.json"], "st": ["config.json", "modules.json"],
                        "run": ["config.json", "modules.json", RUN_RECORD], "notes": []}.items():
        (tmp_path / name).mkdir()
        for file in files:
            (tmp_path / name / file).write_text(json.dumps(config if file == "config.json" else {}))
    (tmp_path / "afile.txt").write_text("x")
    return tmp_path


@pytest.mark.parametrize("model, encoder, kind, repo, revision", [
    ("pythia-14m", False, "catalogue", "EleutherAI/pythia-14m", None),
    ("EleutherAI/pythia-14m", False, "catalogue", "EleutherAI/pythia-14m", None),
    ("EleutherAI/pythia-14m", True, "hub", "EleutherAI/pythia-14m", None),  # an encoder loads as saved on the Hub
    ("random:pythia-14m", True, "random", None, None),
    ("org/name", False, "hub", "org/name", None),
    ("org/name@v1", True, "hub", "org/name", "v1"),
    ("hf", False, "transformers", None, None),
    ("st", True, "sentence-transformers", None, None),
    ("run", True, "run", None, None),
    ("run", False, "run", None, None),  # a run dir is a base model too: it holds config.json
])
def test_every_kind_of_model_argument(folders: Path, model: str, encoder: bool, kind: str, repo: str | None,
                                      revision: str | None) -> None:
    arg = classify_model(model, encoder=encoder)
    assert (arg.kind, arg.repo, arg.revision) == (kind, repo, revision)
    assert arg.saved_encoder == (kind in ("run", "sentence-transformers"))
    if kind in ("run", "sentence-transformers", "transformers"):
        assert arg.path == folders / model and arg.ref is not None and arg.ref.spec.name == "pythia-14m"


@pytest.mark.parametrize("model, encoder, message", [
    ("notes", False, "model folder 'notes' has no config.json"),
    ("notes", True, "'notes' is not a model folder (no modules.json, config.json or st_recipe.json)"),
    ("afile.txt", True, "'afile.txt' is a file, not a model folder"),
    ("afile.txt", False, "model path 'afile.txt' does not exist or is not a folder"),
    ("./no/such", True, "model path './no/such' does not exist"),
    ("pythia-13m", False, "unknown model 'pythia-13m'"),
    ("random:pythia-13m", True, "unknown catalogue model 'pythia-13m'"),
    (" ", True, "MODEL must not be empty"),
    ("", False, "model must be a non-empty string"),
])
def test_bad_model_arguments_are_one_line(folders: Path, model: str, encoder: bool, message: str) -> None:
    with pytest.raises(StRecipeError, match="^" + re.escape(message)):
        classify_model(model, encoder=encoder)


def test_run_dir_check_owns_the_output_rules(folders: Path) -> None:
    (folders / "run" / "extra.txt").write_text("x")
    RunDir.at("new").check()
    RunDir.at("run").check(overwrite=True)  # an earlier run may be replaced
    cases = [("afile.txt", {}, "output path '.*afile.txt' is a file, not a folder"),
             ("run", {}, "already exists; pass --overwrite"),
             ("hf", {"overwrite": True}, "neither an earlier st-recipe run dir"),
             ("afile.txt/run", {}, "--out 'afile.txt/run' cannot be created: '.*afile.txt' is a file")]
    for out, flags, message in cases:
        with pytest.raises(StRecipeError, match=message):
            RunDir.at(out).check(**flags)
    with pytest.raises(StRecipeError, match=r"the output folder \(--out\) must not be empty"):
        RunDir.at(" ")
    with pytest.raises(StRecipeError, match="--cache 'afile.txt' is a file, not a folder"):
        check_folder("afile.txt", "--cache")
    assert check_folder("new/deeper", "--cache") == folders / "new" / "deeper"


def test_locate_model_reads_no_folder_files(folders: Path) -> None:
    """locate_model answers where a model is without opening config.json; parse_model_spec adds the folder's spec."""
    (folders / "bad").mkdir()
    (folders / "bad" / "config.json").write_text('{"model_type": "gpt_neox", "hidden_size": 0}')
    assert locate_model("bad") == ModelRef(raw=str(folders / "bad"), kind="local")
    with pytest.raises(StRecipeError, match="hidden_size"):
        parse_model_spec("bad")
    assert locate_model("hf").spec is None and parse_model_spec("hf").spec.name == "pythia-14m"
    for model in ("pythia-14m", "random:pythia-14m", "org/name"):
        assert locate_model(model) == parse_model_spec(model)
    with pytest.raises(StRecipeError, match="^model path './no/such' does not exist or is not a folder$"):
        locate_model("./no/such")


def test_compare_base_needs_a_run_dir(folders: Path) -> None:
    assert compare_base_record(" run ") == Path("run") / RUN_RECORD
    for model in ("st", "hf", "notes", "org/name", "", object()):
        with pytest.raises(StRecipeError, match=r"^--compare-base needs a run dir with st_recipe\.json"):
            compare_base_record(model)


def test_an_unfinished_run_dir_is_no_encoder(folders: Path) -> None:
    (folders / "run" / "modules.json").unlink()
    with pytest.raises(StRecipeError, match=r"^run dir 'run' holds no model \(no modules\.json\): did training finish\?$"):
        classify_model("run", encoder=True)
    assert classify_model("run").kind == "run"  # as a base model it is the transformers folder it holds
