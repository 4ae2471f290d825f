"""The CLI shell: help, catalogue, methods table, one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from st_recipe.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_help_does_not_import_heavy_libraries():
    code = "import sys; from st_recipe.cli import main; assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert run("--help").exit_code == 0


def test_models_lists_the_catalogue():
    result = run("models", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["pythia-410m"]["n_params"] == 302311424


def test_methods_with_a_model_counts_parameters(tiny_neox_dir):
    result = run("methods", "--model", str(tiny_neox_dir), "--method-arg", "lora.r=4", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in json.loads(result.stdout)}
    assert set(rows) >= {"full", "freeze", "bias", "lora", "propulsion", "peft"}
    assert rows["full"]["n_trainable"] == rows["full"]["n_params"]
    assert rows["lora"]["args"]["r"] == 4
    assert rows["full"]["flops_per_token"] == 6 * rows["full"]["n_params"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["methods", "--method-arg", "lora.r=0"], "rank r must be an integer >= 1"),
        (["methods", "--method-arg", "loraa.r=8"], "unknown method 'loraa'"),
        (["methods", "--method-arg", "freeze.fraction=2"], "fraction"),
        (["methods", "--model", "./no/such/dir"], "does not exist"),
        (["methods", "--model", "random:pythia-13m"], "unknown catalogue model"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle):
    result = run(*args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], result.output
    assert "Traceback" not in result.output
