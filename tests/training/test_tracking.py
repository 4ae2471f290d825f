"""train --report-to (TensorBoard and Trackio, offline, read back) and --eval-file (a dev curve against FLOPs)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from st_recipe import StRecipeError
from st_recipe.cli import main

# Trackio reads its folder once, when first imported: keep it out of the user's home before anything imports it.
os.environ.setdefault("TRACKIO_DIR", tempfile.mkdtemp(prefix="st-recipe-trackio-"))


def _sts_file(path: Path, n: int = 24) -> Path:
    from st_recipe.data import load_pairs

    held = load_pairs("builtin", split="test")
    rows = [{"score_range": [0, 5], "name": "dev-sts"}]
    for i in range(n):
        rows.append({"sentence1": held.anchors[i], "sentence2": held.positives[i], "score": 5})
        rows.append({"sentence1": held.anchors[i], "sentence2": held.positives[(i + 7) % len(held)], "score": 0})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_train_reports_flops_to_tensorboard_and_trackio_and_records_a_dev_curve(tiny_neox_dir, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'st-recipe[track]')")
    trackio = pytest.importorskip("trackio", reason="trackio is not installed (pip install 'st-recipe[track]')")
    sts = _sts_file(tmp_path / "dev.jsonl")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "train", "--model", str(tiny_neox_dir), "--method", "full", "--budget", "3e9", "--batch-size", "16",
        "--max-seq-length", "32", "--lr", "1e-3", "--out", str(out), "--quiet",
        "--report-to", "tensorboard,trackio", "--run-name", "tracked", "--eval-file", f"sts:{sts}",
        "--eval-points", "2"])
    assert result.exit_code == 0, result.output
    rec = json.loads((out / "st_recipe.json").read_text())

    # The record: dev score against training FLOPs, from 0 to the end, its evaluation FLOPs apart from the budget.
    dev = rec["dev"]
    assert dev["task"] == "dev-sts" and dev["counted_in_budget"] is False
    flops = [p["flops"] for p in dev["points"]]
    assert flops[0] == 0 and flops[-1] == rec["flops"]["spent"] and flops == sorted(flops) and len(flops) == 3
    assert all(-1 <= p["score"] <= 1 for p in dev["points"])
    assert [p["step"] for p in dev["points"]][-1] == rec["steps"]
    # Exactly the forward FLOPs of the texts each evaluation encoded (every sentence of the file, each time).
    per_eval = _forward_flops(out, sts, rec)
    assert dev["eval_flops"] == pytest.approx(per_eval * len(flops), rel=1e-9)
    assert rec["flops"]["spent"] <= rec["flops"]["budget"]  # the evaluations never came out of the budget

    # TensorBoard: the budget counts at every logged step, the dev score beside them, the recipe in the config.
    tb = Path(str(out) + ".tensorboard")
    spent = _scalars(tb, "train/flops_spent")
    assert len(spent) >= rec["steps"] and spent[-1][1] == pytest.approx(rec["flops"]["spent"])
    assert [v for _, v in spent] == sorted(v for _, v in spent)
    fraction = _scalars(tb, "train/budget_fraction")[-1][1]
    assert fraction == pytest.approx(rec["flops"]["spent_fraction"], rel=1e-6)
    assert _scalars(tb, "train/pairs_seen")[-1][1] == rec["pairs_seen"]
    assert _scalars(tb, "train/tokens_seen")[-1][1] == rec["tokens_seen"]
    assert [v for _, v in _scalars(tb, "eval/dev_score")] == pytest.approx([p["score"] for p in dev["points"]])

    # Trackio (local SQLite store): the same metrics, the recipe with provenance in the run's config.
    from trackio.sqlite_storage import SQLiteStorage

    logs = SQLiteStorage.get_logs("st-recipe", "tracked")
    logged = [row["train/flops_spent"] for row in logs if "train/flops_spent" in row]
    assert logged and logged[-1] == pytest.approx(rec["flops"]["spent"])
    config = SQLiteStorage.get_run_config("st-recipe", "tracked")
    assert config["st_recipe"]["provenance"]["budget"]["source"] == "user"
    assert trackio is not None


def _forward_flops(run: Path, sts: Path, rec: dict) -> float:
    from sentence_transformers import SentenceTransformer

    from st_recipe.costing.flops import CostProfile

    model = SentenceTransformer(str(run))
    profile = CostProfile(**rec["flops"]["profile"])
    rows = [json.loads(line) for line in sts.read_text().splitlines()[1:]]
    texts = [r["sentence1"] for r in rows] + [r["sentence2"] for r in rows]
    ids = model[0].tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
    return sum(profile.forward_flops(len(i)) for i in ids)


def test_dev_curve_goes_on_the_card_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    from st_recipe.publishing.plots import plot_loss

    assert plot_loss([2.0, 1.5, 1.2], tmp_path / "loss.png", [{"flops": 0.0, "step": 0, "score": 0.3},
                                                               {"flops": 1e9, "step": 3, "score": 0.5}])
    import matplotlib.image

    wide = matplotlib.image.imread(tmp_path / "loss.png").shape
    assert plot_loss([2.0, 1.5, 1.2], tmp_path / "plain.png")
    assert wide[1] > matplotlib.image.imread(tmp_path / "plain.png").shape[1] * 1.5  # a second panel: the dev curve


@pytest.mark.parametrize("args, needle", [
    (["--report-to", "neptune"], "not a supported tracker"),
    (["--eval-flops", "1e9"], "give --eval-file"),
    (["--eval-file", "sts:{tmp}/missing.jsonl"], "does not exist"),
    (["--eval-file", "sts:{tmp}/dev.jsonl", "--eval-flops", "1e9", "--eval-points", "2"], "not both"),
    (["--eval-file", "sts:{tmp}/dev.jsonl", "--eval-flops", "-1"], "positive"),
])
def test_bad_tracking_and_eval_flags_fail_before_training(tmp_path, args, needle):
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps({"sentence1": f"a{i}", "sentence2": f"b{i}", "score": i}) + "\n"
                                                for i in range(4)))
    result = CliRunner().invoke(main, ["train", "--budget", "1e15", "--out", str(tmp_path / "run"),
                                       *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == 2 and needle in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_report_to_names_the_missing_package(monkeypatch):
    import importlib.util

    from st_recipe.training.tracking import parse_report_to

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(StRecipeError, match="needs the mlflow package"):
        parse_report_to("tensorboard,mlflow")
    assert parse_report_to("none") == () and parse_report_to(None) == ()


def test_retrieval_dev_file_is_scored_and_metered(tiny_encoder, tmp_path):
    from st_recipe.costing.flops import profile_model
    from st_recipe.training.budget_state import BudgetState
    from st_recipe.training.dev_eval import build_evaluator, metered_evaluator

    folder = tmp_path / "ret"
    folder.mkdir()
    docs = ["the cat sat on the mat", "stocks fell sharply today", "rain is expected tomorrow", "a recipe for bread"]
    queries = ["where did the cat sit", "what happened to stocks"]
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": t}) + "\n" for i, t in enumerate(queries)))
    (folder / "qrels.jsonl").write_text("".join(json.dumps({"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1}) + "\n"
                                                for i in range(2)))
    inner, name = build_evaluator(f"retrieval:{folder}")
    state = BudgetState(budget=1e9, flops=2.5e8)
    profile = profile_model(tiny_encoder)
    metrics = metered_evaluator(inner, state, profile)(tiny_encoder, steps=7)
    assert name == "ret" and 0 <= metrics["dev_score"] <= 1 and metrics["dev_score"] == metrics[inner.primary_metric]
    assert state.dev == [{"flops": 2.5e8, "step": 7, "score": metrics["dev_score"]}]
    ids = tiny_encoder[0].tokenizer(queries + docs, truncation=True, max_length=tiny_encoder.max_seq_length)["input_ids"]
    assert state.eval_flops == pytest.approx(sum(profile.forward_flops(len(i)) for i in ids), rel=1e-9)


def test_sweep_cells_log_under_one_group(tmp_path):
    from st_recipe.sweeps.jobs import cell_tracking

    tracking = cell_tracking(tmp_path / "my-sweep", "1e15-pythia-14m-full", ("tensorboard", "mlflow"))
    env = tracking.env(tmp_path / "my-sweep" / "cells" / "1e15-pythia-14m-full")
    assert tracking.group == "my-sweep" and tracking.run_name == "1e15-pythia-14m-full"
    assert env["MLFLOW_EXPERIMENT_NAME"] == env["WANDB_RUN_GROUP"] == "my-sweep"
    assert env["TENSORBOARD_LOGGING_DIR"] == str(tmp_path / "my-sweep" / "tensorboard" / "1e15-pythia-14m-full")
    assert cell_tracking(tmp_path, "x", ()) is None
