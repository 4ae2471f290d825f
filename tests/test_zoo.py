"""The model zoo: registry in sync with the planner, `zoo list`, and an offline `zoo build` rehearsal that resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from st_recipe.cli import main
from st_recipe.planning.recipes import registry_dir
from st_recipe.zoo import ZOO_PLAN, build_state, write_zoo, zoo_entries, zoo_name

PAPER_BUDGETS = {1.5e15, 6e15, 2.4e16, 9.6e16, 3.84e17, 1.536e18}


def test_zoo_yaml_is_what_the_planner_produces(tmp_path: Path) -> None:
    write_zoo(tmp_path / "zoo.yaml")
    assert (tmp_path / "zoo.yaml").read_text() == (registry_dir() / "zoo.yaml").read_text()


def test_zoo_covers_the_papers_budgets_and_methods_with_full_recipes() -> None:
    entries = zoo_entries()
    assert len(entries) >= 8 and list(entries) == [zoo_name(m, meth) for m, meth, _, _ in ZOO_PLAN]
    assert {r.budget for r, _ in entries.values()} == PAPER_BUDGETS
    assert {r.method for r, _ in entries.values()} >= {"full", "freeze", "bias", "lora", "propulsion"}
    for name, (recipe, _) in entries.items():
        assert name == f"{recipe.model}-{recipe.method}-embed"
        assert recipe.pairs > 0 and recipe.learning_rate > 0
        assert all(p.source in {"paper", "derived", "heuristic", "measured", "fitted", "user"} for p in recipe.provenance.values())


def test_zoo_list_shows_every_entry_and_its_build_state(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    (builds / "pythia-70m-lora-embed").mkdir(parents=True)
    (builds / "pythia-70m-lora-embed" / "state.json").write_text(json.dumps({"trained": "x"}))
    r = CliRunner().invoke(main, ["zoo", "list", "--builds", str(builds)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split()[:4] == ["name", "base", "method", "budget"]
    assert any(line.startswith("pythia-410m-lora-embed") and "EleutherAI/pythia-410m" in line for line in lines)
    assert any(line.startswith("pythia-70m-lora-embed") and line.rstrip().endswith("trained") for line in lines)


@pytest.mark.parametrize("args, words", [
    (["zoo", "build", "pythia-70m-lora-embd", "--org", "me"], "did you mean pythia-70m-lora-embed"),
    (["zoo", "build", "pythia-70m-lora-embed", "--org", "me/x"], "repo id"),
    (["zoo", "build", "pythia-70m-lora-embed", "--org", "me", "--budget", "abc"], "budget"),
])
def test_zoo_build_bad_input_is_one_line(args: list[str], words: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(main, [*args, "--builds", str(tmp_path / "b")])
    assert r.exit_code == 2, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and words in r.stderr.lower(), r.stderr
    assert not (tmp_path / "b").exists()


def test_zoo_build_rehearsal_trains_evaluates_dry_runs_and_resumes(tiny_neox_dir: Path, tmp_path: Path) -> None:
    builds, upload = tmp_path / "builds", tmp_path / "upload"
    name = "pythia-70m-lora-embed"
    args = ["zoo", "build", name, "--org", "my-org", "--builds", str(builds), "--model", str(tiny_neox_dir),
            "--budget", "3e9", "--batch-size", "16", "--task-file", "builtin:sts", "--dry-run", str(upload), "--quiet"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    state = build_state(builds, name)
    assert state["trained"] and state["evaluated"]["tasks"][0]["task"] == "builtin-docstring-sts"
    assert "published" not in state  # a dry run publishes nothing
    record = json.loads((builds / name / "run" / "st_recipe.json").read_text())
    assert record["recipe"]["method"] == "lora" and record["flops"]["spent"] <= 3e9
    card = (upload / "README.md").read_text()
    assert "SentenceTransformer(\"my-org/pythia-70m-lora-embed\")" in card and "builtin-docstring-sts" in card
    assert (upload / "model.safetensors").is_file() and not list(upload.rglob("adapter_*"))

    # A second run resumes: training and evaluation are not repeated.
    weights = builds / name / "run" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert weights.stat().st_mtime_ns == before and "trained, evaluated" in r.stdout

    # The same builds dir with a different recipe is refused instead of mixing two builds.
    other = [a if a != "3e9" else "4e9" for a in args]
    r = CliRunner().invoke(main, other)
    assert r.exit_code == 2 and "different recipe" in r.stderr
