"""Running mteb: local tasks through the real mteb.evaluate and its cache, offline failures, OOM backoff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from st_recipe.evaluation import encode_with_backoff, evaluate, is_out_of_memory
from tests.evaluation.helpers import write_sts


def test_local_tasks_run_through_mteb_and_cache_under_the_true_name(
    fresh_run: Path, sts_file: Path, retrieval_dir: Path, encode_spy: list[int]
) -> None:
    summary = evaluate(str(fresh_run), task_files=[str(sts_file), str(retrieval_dir)], progress=False)
    assert summary.ok and encode_spy
    assert [(r.task, r.type, r.main_score_name) for r in summary.tasks] == [
        ("tiny-sts", "STS", "cosine_spearman"), ("tiny-retrieval", "Retrieval", "ndcg_at_10")]
    assert all(-1 <= r.main_score <= 1 and not r.cached for r in summary.tasks)
    assert summary.model_name == "st-recipe/tiny-run" and summary.revision.startswith("sha256-")

    # mteb's layout under the run dir's default cache, never no_model_name/available
    rev_dir = fresh_run / "mteb_results" / "results" / "st-recipe__tiny-run" / summary.revision
    assert sorted(p.name for p in rev_dir.glob("*.json")) == ["model_meta.json", "tiny-retrieval.json", "tiny-sts.json"]
    assert [p.name for p in (fresh_run / "mteb_results" / "results").iterdir()] == ["st-recipe__tiny-run"]
    meta = json.loads((rev_dir / "model_meta.json").read_text())
    assert (meta["name"], meta["revision"]) == ("st-recipe/tiny-run", summary.revision)
    task_json = json.loads((rev_dir / "tiny-sts.json").read_text())
    assert task_json["scores"]["test"][0]["main_score"] == pytest.approx(summary.tasks[0].main_score, abs=1e-6)

    saved = json.loads((fresh_run / "eval_results.json").read_text())
    assert saved == json.loads(summary.to_json())
    assert {"model_name", "revision", "tasks", "averages", "failed", "base"} <= set(saved)
    assert saved["cache_dir"] == "mteb_results" and saved["base"] is None and saved["failed"] == []
    assert set(saved["tasks"][0]) >= {"task", "type", "main_score_name", "main_score", "split", "subsets", "languages"}
    assert saved["averages"]["by_type"].keys() == {"STS", "Retrieval"}

    # a second run reads mteb's cache: no encoding at all, same scores
    encode_spy.clear()
    again = evaluate(str(fresh_run), task_files=[str(sts_file), str(retrieval_dir)], progress=False)
    assert encode_spy == []
    assert all(r.cached for r in again.tasks)
    assert [r.main_score for r in again.tasks] == [r.main_score for r in summary.tasks]

    # an edited task file is re-run (mteb alone would reuse the stale result)
    write_sts(sts_file, header={"score_range": [0, 5]}, seed=7)
    third = evaluate(str(fresh_run), task_files=[str(sts_file), str(retrieval_dir)], progress=False)
    assert [r.cached for r in third.tasks] == [False, True] and encode_spy


def test_unreachable_hub_switches_later_builtin_tasks_to_offline(monkeypatch: pytest.MonkeyPatch, tiny_encoder,
                                                                  sts_file: Path, tmp_path: Path) -> None:
    import datasets.config
    import huggingface_hub.constants
    import mteb

    def unreachable(self, *args, **kwargs):
        raise ConnectionError("Couldn't reach 'mteb/biosses-sts' on the Hub (LocalEntryNotFoundError)")

    # online as far as the libraries know, but the first built-in task finds no network
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(type(mteb.get_task("BIOSSES")), "load_data", unreachable)
    summary = evaluate(tiny_encoder, tasks=["BIOSSES,SICK-R"], task_files=[str(sts_file)], model_name="me/tiny",
                       cache_dir=tmp_path / "c", progress=False)
    errors = {f["task"]: f["error"] for f in summary.failed}
    assert errors.keys() == {"BIOSSES", "SICK-R"} and all("--task-file" in e for e in errors.values())
    assert "OfflineModeIsEnabled" in errors["SICK-R"]  # no second round of network retries
    assert [r.task for r in summary.tasks] == ["tiny-sts"]
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False and datasets.config.HF_HUB_OFFLINE is False


def test_backoff_halves_on_fake_oom() -> None:
    class OutOfMemoryError(RuntimeError):
        pass

    tried: list[int] = []

    def encode(batch_size: int) -> str:
        tried.append(batch_size)
        if batch_size > 8:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "ok"

    assert encode_with_backoff(encode, 64) == ("ok", 8) and tried == [64, 32, 16, 8]
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory")) and not is_out_of_memory(ValueError("x"))
    with pytest.raises(OutOfMemoryError):  # at batch size 1 there is nothing left to halve
        encode_with_backoff(lambda b: encode(100), 1)
    with pytest.raises(KeyError):  # other errors are not retried
        encode_with_backoff(lambda b: {}["x"], 32)


def test_encoder_adapts_batch_size_during_mteb(tiny_encoder, sts_file: Path, tmp_path: Path, encode_spy: list[int],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from sentence_transformers import SentenceTransformer

    spied = SentenceTransformer.encode

    def tight_memory(self, *args, **kwargs):
        if kwargs.get("batch_size", 32) > 4:
            raise RuntimeError("CUDA out of memory (fake)")
        return spied(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "encode", tight_memory)
    summary = evaluate(tiny_encoder, task_files=[str(sts_file)], cache_dir=tmp_path / "c", model_name="me/oom",
                       batch_size=32, progress=False)
    assert summary.ok and summary.batch_size == 4 and encode_spy and set(encode_spy) == {4}

