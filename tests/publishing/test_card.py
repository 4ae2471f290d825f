"""The model card: content, the model-index as the Hub parses it, base and data metadata, failures in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.hub_server import HubServer
from tests.publishing.common import PUBLIC, all_failed_results, copy_run, dry, edit_record, sample_results

# ----------------------------------------------------------------------------------------- card


def test_card_content(hub: HubServer, driver: dict[str, Any]) -> None:
    """Usage, provenance, FLOPs, MTEB table with base and difference, held-out scores, limitations, citations."""
    # `driver` made the pushes whose card is read here.
    card = hub.repo_files(PUBLIC)["README.md"].decode()
    assert f'SentenceTransformer("{PUBLIC}")' in card and "model.similarity(" in card
    assert "| learning_rate | 0.001 | user |" in card
    assert "| spent | " in card and "of the budget" in card and "| tokens seen |" in card
    assert "![Training loss per optimizer step](assets/training_loss.png)" in card
    assert "| BIOSSES | STS | cosine_spearman | 0.4123 | 0.2000 | +0.2123 |" in card
    assert "| my-sts (local) |" in card
    assert "Against the compute-optimal frontier" in card and "(assets/frontier.png)" in card
    assert "### Held-out pairs" in card and "before fine-tuning" in card
    assert "English only" in card and "Causal attention" in card
    for key in ("ziarko2024repurposing", "2406.04165", "biderman2023pythia", "reimers2019sentencebert"):
        assert key in card
    assert "kowsher2024propulsion" not in card  # cited only for propulsion runs
    assert "randomly initialised" not in card


def test_card_parses_with_the_model_index_of_the_results(loaded: dict[str, Any], tmp_path: Path) -> None:
    data = loaded["card"]
    assert data["library_name"] == "sentence-transformers" and data["pipeline_tag"] == "sentence-similarity"
    assert {"st-recipe", "mteb", "sentence-transformers", "lora", "feature-extraction"} <= set(data["tags"])
    assert "base_model" not in data and "license" not in data  # a local base: nothing claimed
    summary = sample_results(tmp_path / "results.json", PUBLIC)
    expected = [(r["type"], f"MTEB {r['task']}", r["main_score_name"], r["main_score"]) for r in summary["tasks"]
                if r["source"] == "mteb"]
    got = [(e["task_type"], e["dataset_name"], e["metric_type"], e["value"]) for e in loaded["evals"]]
    assert got == expected
    by_name = {e["dataset_name"]: e for e in loaded["evals"]}
    assert by_name["MTEB BIOSSES"]["dataset_type"] == "mteb/biosses-sts"
    assert by_name["MTEB STS22"]["config"] == "en" and by_name["MTEB STS22"]["split"] == "test"


def test_hub_base_gets_base_model_license_and_dataset(run_dir: Path, tmp_path: Path) -> None:
    """A catalogued Hub base and a Hub dataset appear in the metadata; propulsion runs cite Propulsion."""
    from huggingface_hub import ModelCard

    from st_recipe.publishing import publish

    run = copy_run(run_dir, tmp_path / "run")
    edit_record(run, model={"model": "pythia-14m", "load_id": "EleutherAI/pythia-14m", "random_init": False},
                data={"source": "sentence-transformers/all-nli:pair", "train_pairs": 100},
                method={"name": "propulsion", "args": {"degree": 15}, "params": {}})
    result = publish(run, PUBLIC, dry_run=tmp_path / "dry", no_scores=True)
    assert result.dry_run == tmp_path / "dry" and result.commit is None
    card = ModelCard.load(tmp_path / "dry" / "README.md")
    assert card.data.base_model == "EleutherAI/pythia-14m" and card.data.license == "apache-2.0"
    assert card.data.datasets == ["sentence-transformers/all-nli"]
    assert {"pythia", "propulsion"} <= set(card.data.tags)
    assert "kowsher2024propulsion" in card.text
    meta = json.loads((tmp_path / "dry" / "mteb_model_meta.json").read_text())
    assert meta["adapted_from"] == "EleutherAI/pythia-14m" and meta["license"] == "apache-2.0"


def test_card_lists_each_failure_in_one_short_line(run_dir: Path, tmp_path: Path) -> None:
    """An offline paper-15 run after a good eval: the scores stay, and each failure is one short line."""
    scored = [{"task": t, "type": "STS", "main_score_name": "cosine_spearman", "main_score": 0.5, "split": "test",
               "subsets": ["default"], "languages": ["eng-Latn"], "source": "mteb", "cached": False}
              for t in ("BIOSSES", "SICK-R", "STS22")]
    results = all_failed_results(tmp_path / "merged.json", scored)
    assert dry(run_dir, tmp_path / "out", "--results", str(results)).exit_code == 0
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| BIOSSES | STS | cosine_spearman | 0.5000 |" in card
    lines = [ln for ln in card.splitlines() if ln.startswith("- ") and ": could not load its data" in ln]
    assert len(lines) == 15 and all(len(ln) <= 140 for ln in lines), lines
    assert "- BIOSSES: could not load its data from the Hub (an earlier score is shown above)" in lines
    assert "- ArguAna: could not load its data from the Hub (no score)" in lines
    assert "xxxxxxxxxx" not in card and "LocalEntryNotFoundError" not in card
