"""The CLI shell: help, catalogue, methods table, one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from st_recipe.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


HEAVY = ("torch", "transformers", "sentence_transformers", "peft")


@pytest.mark.parametrize("args", [["--help"], ["plan", "--budget", "1e17"], ["methods"], ["methods", "--json"]])
def test_light_commands_do_not_import_heavy_libraries(args):
    # A fresh interpreter: in-process, torch may already be loaded by other tests and hide a heavy import.
    code = (
        "import sys\n"
        "from st_recipe.cli import main\n"
        f"sys.argv = ['st-recipe', *{args!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY', loaded)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY []", proc.stdout[-2000:]


def test_a_bare_group_shows_its_help_not_an_error():
    result = run("zoo")
    assert "Usage:" in result.output and "build" in result.output and "error:" not in result.output


def test_methods_lists_every_method_with_its_default_arguments():
    result = run("methods")
    assert result.exit_code == 0, result.output
    for needle in ("full", "freeze", "fraction=0.5", "lora", "r=32", "peft", 'peft_type="ia3"', "propulsion"):
        assert needle in result.output
    rows = {r["method"]: r for r in json.loads(run("methods", "--json", "--method-arg", "lora.r=8").output)}
    assert rows["lora"]["args"]["r"] == 8 and rows["freeze"]["args"]["fraction"] == 0.5


def _fake_train(monkeypatch, behaviour):
    """Replace the heavy parts of `train` so the command's own handling can be tested in-process."""
    import st_recipe.cli.train as train_cmd_module
    import st_recipe.training as train_module

    monkeypatch.setattr(train_cmd_module, "quiet_libraries", lambda *loud: None)
    monkeypatch.setattr(train_module, "train", behaviour)


def test_ctrl_c_during_train_says_how_to_resume(monkeypatch, tmp_path):
    out = tmp_path / "run"

    def interrupted(recipe, data, options):
        ckpt = Path(str(options.out) + ".checkpoints") / "checkpoint-3"
        ckpt.mkdir(parents=True)
        raise KeyboardInterrupt

    _fake_train(monkeypatch, interrupted)
    result = run("train", "--model", "random:pythia-14m", "--budget", "1e15", "--out", str(out), "--quiet")
    assert result.exit_code == 130, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"interrupted; run the same command with --resume to continue from the last checkpoint in {out}.checkpoints"]
    assert "Aborted" not in result.output and "Traceback" not in result.output


def test_ctrl_c_before_the_first_checkpoint_says_so(monkeypatch, tmp_path):
    def interrupted(recipe, data, options):
        Path(str(options.out) + ".checkpoints").mkdir()
        raise KeyboardInterrupt

    _fake_train(monkeypatch, interrupted)
    result = run("train", "--model", "random:pythia-14m", "--budget", "1e15", "--out", str(tmp_path / "run"), "--quiet")
    assert result.exit_code == 130 and "before the first checkpoint" in result.output and "--overwrite" in result.output


def test_train_summary_labels_the_padded_count(monkeypatch, tmp_path):
    from st_recipe.run import FlopsInfo, RunRecord
    from st_recipe.training import RunResult

    record = RunRecord(recipe={}, steps=3, pairs_seen=48, tokens_seen=900, wall_time_s=2.0,
                       flops=FlopsInfo(spent=9.9e12, budget=1e13, spent_fraction=0.99, paper_formula=9.5e12,
                                       executed_with_padding=1.2e13))
    seen = {}

    def finished(recipe, data, options):
        seen["data"] = data
        return RunResult(out=Path(options.out), record=record)

    _fake_train(monkeypatch, finished)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"anchor": f"a{i}", "positive": f"p{i}"}) + "\n" for i in range(40)))
    # Batch 16: the data is checked against the batch size before training (40 pairs cannot fill the planned 1024).
    result = run("train", "--model", "random:pythia-14m", "--budget", "1e15", "--out", str(tmp_path / "run"),
                 "--data", str(pairs), "--batch-size", "16", "--quiet")
    assert result.exit_code == 0, result.output
    assert "executed incl. padding 1.2e+13" in result.output and "; with padding" not in result.output
    # A local data file is read (and checked) before training starts, and handed over as pairs.
    assert len(seen["data"]) == 40


def test_methods_prices_a_catalogue_model_offline_without_weights():
    # HF_HUB_OFFLINE=1 in the test session: pythia-410m's counts come from its known config on the meta device.
    result = run("methods", "--model", "pythia-410m", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in json.loads(result.stdout)}
    assert rows["full"]["n_params"] == 302_311_424 and rows["full"]["flops_per_token"] == 6 * 302_311_424
    assert rows["lora"]["n_trainable"] == 24 * 16 * 32 * 1024


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


@pytest.mark.parametrize("budget", ["1.5e15", "6e15", "2.4e16", "9.6e16", "3.84e17", "1.536e18"])
def test_plan_json_for_each_paper_budget(budget):
    from st_recipe.models.catalog import get_spec

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
