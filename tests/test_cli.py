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


def test_plan_and_help_do_not_import_torch():
    code = (
        "import sys; from click.testing import CliRunner; from st_recipe.cli import main; "
        "r = CliRunner().invoke(main, ['plan', '--budget', '1e17']); assert r.exit_code == 0, r.output; "
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("budget", ["1.5e15", "6e15", "2.4e16", "9.6e16", "3.84e17", "1.536e18"])
def test_plan_json_for_each_paper_budget(budget):
    from st_recipe.catalog import get_spec

    result = run("plan", "--budget", budget, "--json")
    assert result.exit_code == 0, result.output
    recipe = json.loads(result.output)
    b = float(budget)
    assert recipe["method"] == ("full" if b < 9.06e16 else "lora")
    n = get_spec(recipe["model"]).n_params
    if recipe["method"] == "lora":
        nt = 16 * 32 * get_spec(recipe["model"]).hidden_size * get_spec(recipe["model"]).num_layers
        cost = 4 * (n + nt) + 2 * nt
    else:
        cost = 6 * n
    assert abs(recipe["pairs"] / (b / (cost * 78)) - 1) < 1e-3
    assert recipe["provenance"]["pairs"]["source"] == "derived"


def test_plan_table_shows_provenance_and_method_costs():
    result = run("plan", "--budget", "1e17", "--max-memory", "24GB")
    assert result.exit_code == 0, result.output
    for needle in ("provenance", "heuristic", "paper", "derived", "cost per token of each method", "trainable parameters"):
        assert needle in result.output


def test_recipes_list_and_show(tmp_path):
    listing = run("recipes", "list")
    assert listing.exit_code == 0 and "paper-9.6e16" in listing.output
    shown = run("recipes", "show", "paper-9.6e16", "--json")
    assert json.loads(shown.output)["method"] == "lora"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: pythia-14m\nmethod: full\npairs: 10\nextra: 1\n")
    result = run("recipes", "show", str(bad))
    assert result.exit_code == 2 and "unknown recipe field(s) extra" in result.output


@pytest.mark.parametrize(
    "args, needle",
    [
        (["plan", "--budget", "abc"], "budget must be a number"),
        (["plan", "--budget", "-1"], "positive"),
        (["plan", "--budget", "0"], "positive"),
        (["plan", "--budget", "nan"], "finite"),
        (["plan", "--budget", "inf"], "finite"),
        (["plan", "--budget", "1e9"], "the minimum is"),
        (["plan", "--budget", "1e17", "--max-memory", "12XB"], "memory size '12XB'"),
        (["plan", "--budget", "1e17", "--model", "pythia-999m"], "unknown model"),
        (["plan", "--budget", "1e17", "--method", "lorra"], "did you mean lora"),
        (["plan", "--budget", "1e17", "--method", "lora", "--method-arg", "r=0"], "rank r"),
        (["recipes", "show", "nope"], "unknown recipe"),
    ],
)
def test_plan_bad_input(args, needle):
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], result.output
