"""What a dry run writes: exactly the upload, in a folder that may only replace an earlier dry run of the same run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.publishing.common import (
    GENERATED,
    MODEL_FILES,
    PUBLIC,
    RANDOM_BASE,
    all_failed_results,
    copy_run,
    dry,
    edit_record,
    sample_results,
    snapshot,
)

# ----------------------------------------------------------------------------------------- dry run


def test_dry_run_writes_exactly_the_upload_and_no_token(run_dir: Path, work: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: no token needed, nothing contacted (the test session is offline); random runs need the flag."""
    from click.testing import CliRunner

    from st_recipe.cli import main
    monkeypatch.delenv("HF_TOKEN", raising=False)
    target = tmp_path / "out" / "dry"
    results = sample_results(tmp_path / "results.json")
    r = CliRunner().invoke(main, ["publish", str(run_dir), "--repo", PUBLIC, "--dry-run", str(target),
                                  "--results", str(tmp_path / "results.json")])
    assert r.exit_code == 0, r.output
    files = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert files == MODEL_FILES | GENERATED
    assert [p.name for p in target.parent.iterdir()] == ["dry"]  # no temporary folder left beside it
    assert json.loads((target / "eval_results.json").read_text())["tasks"] == results["tasks"]
    # An earlier dry run of the same run is replaced only with --overwrite.
    again = ["publish", str(run_dir), "--repo", PUBLIC, "--dry-run", str(target), "--no-scores"]
    r = CliRunner().invoke(main, again)
    assert r.exit_code == 2 and "--overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    assert (target / "eval_results.json").is_file()
    assert CliRunner().invoke(main, [*again, "--overwrite"]).exit_code == 0
    assert not (target / "eval_results.json").exists()
    assert [p.name for p in target.parent.iterdir()] == ["dry"]
    # A folder holding anything else is left alone, --overwrite or not.
    (target / "mine.txt").write_text("keep")
    r = CliRunner().invoke(main, [*again, "--overwrite"])
    assert r.exit_code == 2 and "mine.txt" in r.stderr
    # A random-init run goes through with --allow-random, and its card says so up front.
    random_run = copy_run(run_dir, tmp_path / "random-run")
    edit_record(random_run, random_init=True, model=RANDOM_BASE)
    r = CliRunner().invoke(main, ["publish", str(random_run), "--repo", PUBLIC, "--dry-run", str(tmp_path / "rnd"),
                                  "--allow-random", "--no-scores"])
    assert r.exit_code == 0, r.output
    card = (tmp_path / "rnd" / "README.md").read_text()
    assert "randomly initialised weights" in card and "random-init" in card
    assert "base_model:" not in card


# ----------------------------------------------------------------------------------------- what a dry run may replace


def test_dry_run_never_replaces_another_run(run_dir: Path, tmp_path: Path) -> None:
    """The reported loss: --dry-run DIR onto another finished run, or onto a dry run of another run, is refused."""
    other = copy_run(run_dir, tmp_path / "other-run")
    sample_results(other / "eval_results.json")
    before = snapshot(other)
    for extra in ((), ("--overwrite",)):
        r = dry(run_dir, other, "--no-scores", *extra)
        assert r.exit_code == 2 and "not a dry run of this run" in r.stderr, r.output
        assert len(r.stderr.strip().splitlines()) == 1
    assert snapshot(other) == before

    # A dry run of a different run (its record differs) is not this run's, even though it is publish's output.
    retrained = copy_run(run_dir, tmp_path / "retrained")
    edit_record(retrained, created="2030-01-01T00:00:00Z")
    theirs = tmp_path / "theirs"
    assert dry(retrained, theirs, "--no-scores").exit_code == 0
    before = snapshot(theirs)
    r = dry(run_dir, theirs, "--no-scores", "--overwrite")
    assert r.exit_code == 2 and "not a dry run of this run" in r.stderr, r.output
    assert snapshot(theirs) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-run", "retrained", "theirs"]  # no temp folder left

    # An existing empty folder is fine.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert dry(run_dir, empty, "--no-scores").exit_code == 0 and (empty / "model.safetensors").is_file()
    # --overwrite means nothing to a push: said so before any token or network is needed.
    from click.testing import CliRunner

    from st_recipe.cli import main

    r = CliRunner().invoke(main, ["publish", str(run_dir), "--repo", PUBLIC, "--overwrite", "--no-scores"])
    assert r.exit_code == 2 and "only applies to --dry-run" in r.stderr, r.output


def test_no_scores_is_refused_unless_asked_for(run_dir: Path, tmp_path: Path) -> None:
    """A run without any MTEB score (no summary, or every task failed) needs --no-scores, dry run included."""
    failed = all_failed_results(tmp_path / "failed.json")
    for extra in ((), ("--results", str(failed))):
        r = dry(run_dir, tmp_path / "out", *extra)
        assert r.exit_code == 2 and "st-recipe eval" in r.stderr and "--no-scores" in r.stderr, r.output
        assert len(r.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "out").exists()
    r = dry(run_dir, tmp_path / "out", "--results", str(failed), "--no-scores")
    assert r.exit_code == 0, r.output
    card = (tmp_path / "out" / "README.md").read_text()
    assert "has not been evaluated on MTEB yet" in card and "Couldn't reach" not in card
    assert not (tmp_path / "out" / "eval_results.json").exists()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_dry_run_folder_follows_the_umask(run_dir: Path, tmp_path: Path, umask: int) -> None:
    """The folder is staged with mkdtemp (0700) but ends up with the user's umask, like any folder they make."""
    target = tmp_path / "out"
    old = os.umask(umask)
    try:
        r = dry(run_dir, target, "--no-scores")
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    folders = [target, *(p for p in target.rglob("*") if p.is_dir())]
    files = [p for p in target.rglob("*") if p.is_file()]
    assert len(folders) >= 3 and {"model.safetensors", "README.md"} <= {p.name for p in files}
    assert {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777 for p in folders} == \
        {p.relative_to(tmp_path).as_posix(): 0o777 & ~umask for p in folders}
    assert {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777 for p in files} == \
        {p.relative_to(tmp_path).as_posix(): 0o666 & ~umask for p in files}
