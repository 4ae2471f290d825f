"""st_recipe.run: RunRecord to and from st_recipe.json, and reading, writing and preparing a run dir."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from st_recipe import StRecipeError
from st_recipe.run import (
    FORMAT_VERSION,
    RUN_RECORD,
    DataInfo,
    FlopsInfo,
    Hardware,
    Heldout,
    HeldoutScore,
    LossCurve,
    MethodInfo,
    ModelInfo,
    RunDir,
    RunRecord,
    read_run,
)


def _record(**changes) -> RunRecord:
    record = RunRecord(
        recipe={"model": "pythia-14m", "method": "lora", "pairs": 64},
        model=ModelInfo(model="pythia-14m", load_id="EleutherAI/pythia-14m"),
        method=MethodInfo(name="lora", args={"r": 8}, params={"n_params": 100, "n_trainable": 7},
                          cost_formula="4N + 2N_t"),
        data=DataInfo(source="builtin", train_pairs=64, heldout_pairs=8, stats={"anchor_tokens": 10}, epochs=1.0,
                      version="1", sha256="ab" * 32, hard_negatives={"per_pair": 1, "source": "data"}),
        flops=FlopsInfo(budget=1e12, planned=9e11, spent=8e11, spent_fraction=0.8, stopped_by="budget"),
        heldout=Heldout(before=HeldoutScore(2.0, 0.25, 8), after=HeldoutScore(1.0, 0.75, 8)),
        loss=LossCurve(final=1.0, per_step=[2.0, 1.5, 1.0], lr=[1e-4, 2e-4, 1e-4]),
        hardware=Hardware(platform="linux", cpu_count=2, gpu=None),
        versions={"st_recipe": "0"},
        steps=3, planned_steps=4, pairs_seen=48, tokens_seen=900, wall_time_s=1.5, seed=7,
        dev={"task": "sts", "points": [{"flops": 1.0, "step": 1, "score": 0.5}]},
    )
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def _write(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RUN_RECORD).write_text(json.dumps(data), encoding="utf-8")
    return folder


def test_record_round_trips_through_json():
    record = _record()
    again = RunRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record
    assert again.heldout.after == HeldoutScore(infonce=1.0, top1_accuracy=0.75, pairs=8)
    assert again.format == FORMAT_VERSION and again.status == "finished"


def test_a_minimal_record_takes_the_defaults():
    record = RunRecord.from_dict({"recipe": {"model": "m"}})
    assert record.heldout == Heldout() and record.loss == LossCurve() and record.method == MethodInfo()
    assert record.steps == 0 and record.dev is None and record.repo_id is None


def test_keys_from_a_newer_writer_are_ignored():
    data = _record().to_dict()
    data["new_top_level"] = 1
    data["flops"]["new_counter"] = 2.0
    data["heldout"]["after"]["new_metric"] = 0.1
    assert RunRecord.from_dict(data) == _record()


def test_a_format_1_record_still_reads():
    old = {"recipe": {"model": "m"}, "method": {"name": "full", "params": {"n_params": 5, "n_trainable": 5}},
           "heldout": {"before": None, "after": {"infonce": 1.0, "top1_accuracy": 0.5, "pairs": 4}}}
    record = RunRecord.from_dict(old)
    assert record.method.n_params == record.method.n_trainable == 5
    assert record.heldout.before is None and record.heldout.after.pairs == 4


@pytest.mark.parametrize("data, message", [
    ({"format": FORMAT_VERSION + 1, "recipe": {}}, "format 3 is newer than this st-recipe reads (up to 2); upgrade"),
    ({"format": "2", "recipe": {}}, "malformed run record (format '2' is not a whole number)"),
    ({"format": 2}, "the run record has no recipe"),
    ({"recipe": "m"}, "the run record has no recipe"),
    ({"recipe": {}, "model": "m"}, "expected an object, not str"),
    ({"recipe": {}, "heldout": {"after": [1.0]}}, "expected an object, not list"),
    ({"recipe": {}, "steps": 1, "seed": 2, "status": "finished", "loss": {"final": 1.0}, "data": [1]},
     "expected an object, not list"),
])
def test_bad_records_fail_in_one_line_naming_the_file(data, message):
    with pytest.raises(StRecipeError) as info:
        RunRecord.from_dict(data, where="runs/x/st_recipe.json")
    text = str(info.value)
    assert text.startswith("runs/x/st_recipe.json: ") and message in text and "\n" not in text


def test_a_heldout_that_is_not_an_object_fails_in_one_line():
    with pytest.raises(StRecipeError, match="st_recipe.json"):
        RunRecord.from_dict({"recipe": {}, "heldout": "none"})


def test_a_heldout_score_missing_fields_fails_in_one_line():
    with pytest.raises(StRecipeError, match="malformed run record"):
        RunRecord.from_dict({"recipe": {}, "heldout": {"after": {"infonce": 1.0}}})


def test_base_model_and_random_weights():
    assert _record().base_model == "pythia-14m" and not _record().is_random
    bare = RunRecord(recipe={"model": "random:pythia-14m"})
    assert bare.base_model == "random:pythia-14m" and bare.is_random
    assert RunRecord(recipe={"model": "m"}, random_init=True).is_random
    assert RunRecord(recipe={"model": "m"}, model=ModelInfo(model="m", random_init=True)).is_random
    assert RunRecord(recipe={}).base_model == ""


def test_method_counts_default_to_zero():
    assert MethodInfo().n_params == 0 and MethodInfo(params={"n_trainable": "12"}).n_trainable == 12


def test_a_records_recipe_round_trips_as_a_recipe(tmp_path):
    from st_recipe.planning.recipes import Recipe
    from st_recipe.provenance import Provenance
    from st_recipe.training import recorded_recipe

    recipe = Recipe(model="pythia-14m", method="lora", method_args={"r": 8}, pairs=64, budget=1e12, batch_size=16,
                    prompts={"query": "q: "}, matryoshka_dims=[64, 32], provenance={"pairs": Provenance("derived", "x")})
    RunDir(tmp_path / "run").write(lambda folder: None, _record(recipe=recipe.to_dict()))
    again = recorded_recipe(read_run(tmp_path / "run"))
    assert isinstance(again, Recipe) and again == recipe and again.to_dict() == recipe.to_dict()
    # A newer writer's recipe field (and its provenance) is ignored, as in the record's other sections.
    newer = {**recipe.to_dict(), "new_lever": 1}
    newer["provenance"] = {**newer["provenance"], "new_lever": {"source": "user"}}
    assert recorded_recipe(RunRecord.from_dict({"recipe": newer})) == recipe


def test_a_recipe_that_is_not_one_is_a_line_naming_the_file():
    from st_recipe.training import recorded_recipe

    with pytest.raises(StRecipeError) as info:
        recorded_recipe(RunRecord.from_dict({"recipe": {"model": "m"}}), where="runs/x/st_recipe.json")
    assert str(info.value) == "runs/x/st_recipe.json: recipe: missing required field(s) method, pairs"
    with pytest.raises(StRecipeError, match=r"^st_recipe.json: recipe: .*batch_size must be an integer >= 2"):
        recorded_recipe(RunRecord(recipe={"model": "m", "method": "full", "pairs": 8, "batch_size": 1}))


def test_run_dir_paths(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.record_path == tmp_path / "run" / RUN_RECORD
    assert run.checkpoints == tmp_path / "run.checkpoints"  # beside the run dir, not in it
    assert run.eval_summary == tmp_path / "run" / "eval_results.json"
    assert run.mteb_results == tmp_path / "run" / "mteb_results"


def test_write_then_read_back(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write(lambda folder: (folder / "model.txt").write_text("weights"), _record())
    assert run.is_run() and (tmp_path / "run" / "model.txt").read_text() == "weights"
    assert read_run(tmp_path / "run") == _record()
    # Writing again replaces the whole folder: nothing of the earlier run is left.
    run.write(lambda folder: (folder / "other.txt").write_text("x"), _record(steps=9))
    assert not (tmp_path / "run" / "model.txt").exists() and read_run(tmp_path / "run").steps == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary siblings


def test_a_failed_write_leaves_the_earlier_run_and_no_debris(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write(lambda folder: None, _record())

    def broken(folder: Path) -> None:
        (folder / "half.bin").write_text("x")
        raise OSError("disk trouble")

    with pytest.raises(OSError, match="disk trouble"):
        run.write(broken, _record(steps=9))
    assert read_run(tmp_path / "run").steps == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_reading_what_is_not_a_finished_run(tmp_path):
    with pytest.raises(StRecipeError, match=r"^run dir '.*missing' does not exist$"):
        read_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StRecipeError, match=r"is not a finished st-recipe run \(no st_recipe.json\)$"):
        read_run(tmp_path / "empty")
    _write(tmp_path / "failed", {**_record().to_dict(), "status": "failed"})
    with pytest.raises(StRecipeError, match=r"did not finish \(status 'failed'\)$"):
        read_run(tmp_path / "failed")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / RUN_RECORD).write_text("{not json")
    with pytest.raises(StRecipeError, match="st_recipe.json"):
        read_run(tmp_path / "broken")


def test_read_errors_name_the_record_file(tmp_path):
    _write(tmp_path / "run", {"status": "finished", "format": 99, "recipe": {}})
    with pytest.raises(StRecipeError, match=r"run[/\\]st_recipe.json: run record format 99 is newer"):
        read_run(tmp_path / "run")


def _checkpoint(root: Path, step: int, complete: bool = True) -> Path:
    from st_recipe.run import METER_STATE

    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / METER_STATE).write_text("{}")
    return path


def test_only_a_complete_checkpoint_makes_a_run_resumable(tmp_path):
    run = RunDir(tmp_path / "run")
    assert not run.resumable()
    _checkpoint(run.checkpoints, 4, complete=False)
    assert not run.resumable()
    _checkpoint(run.checkpoints, 2)
    assert run.resumable()


def test_prepare_drops_stale_checkpoints_unless_resuming(tmp_path):
    run = RunDir.at(str(tmp_path / "deeper" / "run"))
    _checkpoint(run.checkpoints, 1, complete=False)  # a killed run that never finished a checkpoint
    run.prepare(resume=True)
    assert run.checkpoints.is_dir()
    run.prepare()
    assert not run.checkpoints.exists() and (tmp_path / "deeper").is_dir() and not run.path.exists()


def test_prepare_refuses_to_drop_a_resumable_run(tmp_path):
    run = RunDir.at(str(tmp_path / "run"))
    _checkpoint(run.checkpoints, 3)
    with pytest.raises(StRecipeError, match="holds checkpoints of an unfinished run; pass --resume"):
        run.prepare()
    assert run.resumable()
    run.prepare(overwrite=True)
    assert not run.checkpoints.exists()


# ----------------------------------------------------------------------------------------- output paths (st_recipe.outputs)

HAS_PROC = Path("/proc/self").is_dir()  # a virtual file system stands in for a read-only one: root ignores modes


def test_check_file_owns_the_output_file_rules(tmp_path, monkeypatch):
    from st_recipe.outputs import check_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "old.jsonl").write_text("{}\n")
    (tmp_path / "afile").write_text("x")
    default = tmp_path / "own.yaml"
    default.write_text("old")
    assert check_file(None, default, "--out", overwrite=False) == default  # the command's own file is refreshed
    assert check_file("old.jsonl", default, "--out", overwrite=True) == Path("old.jsonl")
    assert check_file("new.ndjson", default, "--out", suffixes=(".jsonl", ".ndjson")) == Path("new.ndjson")
    cases = [(" ", {}, "--out must not be empty"),
             (".", {}, "--out '.' is a folder; give a file name"),
             ("no/x.jsonl", {}, "--out 'no/x.jsonl': its folder 'no' does not exist"),
             ("afile/x.jsonl", {}, "--out 'afile/x.jsonl': its folder 'afile' is a file"),
             ("x.txt", {"suffixes": (".jsonl", ".ndjson")}, "--out 'x.txt' must be a .jsonl file"),
             ("old.jsonl", {"overwrite": False}, "--out 'old.jsonl' already exists; pass --overwrite to replace it")]
    for given, flags, message in cases:
        with pytest.raises(StRecipeError, match="^" + re.escape(message) + "$"):
            check_file(given, default, "--out", **flags)


def test_check_folder_and_the_probe(tmp_path, monkeypatch):
    from st_recipe.outputs import check_can_create, check_folder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    assert check_folder("a/b", "--cache") == tmp_path / "a" / "b"
    with pytest.raises(StRecipeError, match="^the sweep dir \\(--out\\) must not be empty$"):
        check_folder("", "sweep dir", empty="the sweep dir (--out) must not be empty")
    with pytest.raises(StRecipeError, match="^--out 'afile/run' cannot be created: '.*afile' is a file, not a folder$"):
        check_folder("afile/run", "--out")
    check_can_create("a/b", "--cache", inside=True)  # probes in the nearest folder that exists, and leaves nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    if HAS_PROC:
        with pytest.raises(StRecipeError, match="^--out '/proc/x' cannot be written: .* in '/proc'; try elsewhere$"):
            check_can_create("/proc/x", "--out", hint="try elsewhere")


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc as an unwritable folder")
def test_eval_refuses_a_run_dir_it_cannot_write_into():
    with pytest.raises(StRecipeError, match=r"^run dir '/proc/self' cannot be written: .*; eval saves eval_results\.json "
                                            r"\(and, without --cache, mteb_results/\) in the run dir: copy it somewhere"):
        RunDir("/proc/self").check_eval_writable()


def test_eval_may_write_into_a_writable_run_dir(tmp_path):
    RunDir(tmp_path).check_eval_writable()
    assert list(tmp_path.iterdir()) == []
