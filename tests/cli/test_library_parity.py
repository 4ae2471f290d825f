"""The CLI is a shell over the library: the same inputs give the same recipe and the same run record both ways."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from st_recipe.data import load_pairs
from st_recipe.planning.builder import build_recipe

REPO = Path(__file__).resolve().parents[2]
# Fields of a run record that describe the run, not the process that made it.
VOLATILE = {"created", "wall_time_s", "hardware", "versions", "out"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "st_recipe.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=600)


def _stable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in VOLATILE}


@pytest.mark.parametrize("flags, kwargs", [
    (["--budget", "3e16"], {"budget": "3e16"}),
    (["--budget", "2e17", "--method", "lora", "--method-arg", "r=8", "--batch-size", "256", "--hard-negatives", "1"],
     {"budget": "2e17", "method": "lora", "method_args": ["r=8"], "batch_size": 256, "hard_negatives": 1}),
])
def test_plan_cli_and_build_recipe_agree(flags: list[str], kwargs: dict) -> None:
    out = _cli("plan", *flags, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == build_recipe(**kwargs).to_dict()


@pytest.mark.parametrize("flags, kwargs", [
    (["--budget", "2e17", "--method", "lora", "--method-arg", "r=8", "--lr", "3e-4", "--seed", "3"],
     {"budget": "2e17", "method": "lora", "method_args": ["r=8"], "learning_rate": 3e-4, "seed": 3}),
    (["--recipe", "paper-2.4e16", "--model", "pythia-160m", "--batch-size", "64", "--attention", "bidirectional",
      "--prompt", "query=q: ", "--matryoshka-dims", "256,64", "--hard-negatives", "2"],
     {"recipe": "paper-2.4e16", "model": "pythia-160m", "batch_size": 64, "attention": "bidirectional",
      "prompts": {"query": "q: "}, "matryoshka_dims": [256, 64], "hard_negatives": 2}),
])
def test_train_dry_run_and_build_recipe_agree(flags: list[str], kwargs: dict, tmp_path: Path) -> None:
    """`st-recipe train --dry-run` prints the recipe it would train, provenance included: build_recipe's."""
    out = _cli("train", *flags, "--out", str(tmp_path / "never"), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == build_recipe(**kwargs).to_dict()
    assert not (tmp_path / "never").exists()


def test_train_cli_and_library_write_the_same_record(tiny_neox_dir: Path, tmp_path: Path) -> None:
    from st_recipe.run import read_run
    from st_recipe.training import train

    # A small local file: st-recipe holds out 5 % of it (2 pairs) instead of the builtin set's 500-pair test split.
    data = tmp_path / "pairs.jsonl"
    src = load_pairs("builtin", seed=0, limit=48)
    data.write_text("".join(json.dumps({"anchor": a, "positive": p}) + "\n" for a, p in src), encoding="utf-8")
    args = dict(budget="3e9", model=str(tiny_neox_dir), batch_size=8, max_seq_length=32, learning_rate=1e-3,
                prompts={"query": "q: "}, matryoshka_dims=[32, 16])
    out = _cli("train", "--budget", "3e9", "--model", str(tiny_neox_dir), "--batch-size", "8", "--max-seq-length",
               "32", "--lr", "1e-3", "--prompt", "query=q: ", "--matryoshka-dims", "32,16", "--quiet", "--data", str(data),
               "--out", str(tmp_path / "cli"))
    assert out.returncode == 0, out.stderr
    lib = train(build_recipe(**args), str(data), out=tmp_path / "lib", quiet=True)
    cli_rec = json.loads((tmp_path / "cli" / "st_recipe.json").read_text())
    lib_rec = json.loads((Path(lib.out) / "st_recipe.json").read_text())
    assert _stable(cli_rec) == _stable(lib_rec)
    assert read_run(tmp_path / "cli").recipe == build_recipe(**args).to_dict()
