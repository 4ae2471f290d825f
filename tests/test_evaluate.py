"""st-recipe eval: local task files through the real mteb.evaluate, the result cache and naming, paper-15, the CLI."""

from __future__ import annotations

import atexit
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

# mteb creates its default cache folder at import time; keep that out of the user's home. Nothing is
# written there (every evaluate call here names its cache), and the folder goes when the process ends.
if "MTEB_CACHE" not in os.environ:
    os.environ["MTEB_CACHE"] = tempfile.mkdtemp(prefix="st_recipe_mteb_default_")
    atexit.register(shutil.rmtree, os.environ["MTEB_CACHE"], ignore_errors=True)

from st_recipe.cli import main  # noqa: E402
from st_recipe.errors import StRecipeError  # noqa: E402
from st_recipe.evaluate import (  # noqa: E402
    PAPER_15_TASKS,
    encode_with_backoff,
    evaluate,
    is_out_of_memory,
    load_task_file,
    parse_task_file,
    resolve_tasks,
)
from tests import kit  # noqa: E402

# ------------------------------------------------------------------------------------------- fixtures


def write_sts(path: Path, n: int = 20, *, header: dict | None = None, seed: int = 0) -> Path:
    """~20 scored pairs from the kit's sentences, with an optional first-line header."""
    rng = random.Random(seed)
    lines = [json.dumps(header)] if header is not None else []
    for i in range(n):
        a = kit.SENTENCES[i % len(kit.SENTENCES)]
        b = a.lower() if i % 3 == 0 else kit.SENTENCES[(3 * i + 1) % len(kit.SENTENCES)]
        lines.append(json.dumps({"sentence1": a, "sentence2": b, "score": round(rng.uniform(0, 5), 2)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_retrieval(folder: Path, n_queries: int = 10, n_docs: int = 30) -> Path:
    """A BEIR-style folder: queries.jsonl, corpus.jsonl and qrels.tsv with a header line."""
    folder.mkdir(parents=True, exist_ok=True)
    s = kit.SENTENCES
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n_docs):
            fh.write(json.dumps({"_id": f"d{i}", "title": f"Doc {i}", "text": f"{s[i % len(s)]} Note {i}."}) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n_queries):
            fh.write(json.dumps({"_id": f"q{i}", "text": s[i % len(s)].lower()}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in range(n_queries)]
    (folder / "qrels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def run_dir(tiny_neox_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 'trained' run dir: the tiny encoder with nudged weights and an st_recipe.json naming its base."""
    import torch

    from st_recipe.encoder import build_encoder, save_encoder

    model = build_encoder(str(tiny_neox_dir), max_seq_length=32)
    torch.manual_seed(1)
    with torch.no_grad():  # stand-in for training: the run must differ from its base
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    folder = save_encoder(model, tmp_path_factory.mktemp("runs") / "tiny-run")
    info = {"recipe": {"model": str(tiny_neox_dir), "pooling": "mean", "method": "full", "seed": 0}}
    (folder / "st_recipe.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


@pytest.fixture
def fresh_run(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the run dir, so its default cache (inside it) starts empty."""
    return Path(shutil.copytree(run_dir, tmp_path / "tiny-run"))


@pytest.fixture
def sts_file(tmp_path: Path) -> Path:
    return write_sts(tmp_path / "tiny-sts.jsonl", header={"score_range": [0, 5]})


@pytest.fixture
def retrieval_dir(tmp_path: Path) -> Path:
    return write_retrieval(tmp_path / "tiny-retrieval")


@pytest.fixture
def encode_spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts SentenceTransformer.encode calls (encode_query/encode_document go through it too)."""
    from sentence_transformers import SentenceTransformer

    calls: list[int] = []
    original = SentenceTransformer.encode

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("batch_size", 32))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "encode", spy)
    return calls


def invoke(*args: str):
    return CliRunner().invoke(main, ["eval", *args])


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --------------------------------------------------------------------------------------- no heavy import


def test_import_stays_light() -> None:
    code = "import sys, st_recipe.evaluate; print(sorted({'torch', 'mteb', 'sentence_transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_test_module_leaves_nothing_in_tmp(tmp_path: Path) -> None:
    """Importing this module (as every pytest run does) makes mteb's default cache folder; it must not outlive the run."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MTEB_CACHE"} | {"TMPDIR": str(tmp)}
    code = "import os, tests.test_evaluate; assert os.path.isdir(os.environ['MTEB_CACHE']), os.environ['MTEB_CACHE']"
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, env=env, check=True)
    assert list(tmp.iterdir()) == []


# ------------------------------------------------------------------------------------------ task names


def test_paper_15_is_exactly_the_papers_tasks_english_and_offline() -> None:
    tasks = resolve_tasks(["paper-15"])
    assert [t.metadata.name for t in tasks] == list(PAPER_15_TASKS) and len(tasks) == 15
    by_name = {t.metadata.name: t for t in tasks}
    assert by_name["STS22"].hf_subsets == ["en"]
    assert by_name["AmazonReviewsClassification"].hf_subsets == ["en"]
    assert all(t.eval_splits == ["test"] for t in tasks)
    assert all(not t.data_loaded for t in tasks)  # metadata only: nothing was downloaded
    types = {t.metadata.type for t in tasks}
    assert types == {"Clustering", "Retrieval", "STS", "Summarization", "Classification", "PairClassification", "Reranking"}


def test_benchmark_and_task_names_resolve() -> None:
    assert len(resolve_tasks(["MTEB(eng, v2)"])) > 20
    # a task name works as a benchmark; task names are case-insensitive and comma-separated
    assert [t.metadata.name for t in resolve_tasks(["STS12"], ["sick-r,biosses", "STS12"])] == ["STS12", "SICK-R", "BIOSSES", "STS12"]


@pytest.mark.parametrize(
    ("benchmarks", "tasks", "expected"),
    [(["paper15"], [], "paper-15"), (["MTEB(eng v2)"], [], "MTEB(eng, v2)"), ([], ["Banking77Clasification"], "Banking77Classification")],
)
def test_unknown_names_suggest_close_ones(benchmarks: list[str], tasks: list[str], expected: str) -> None:
    with pytest.raises(StRecipeError, match="did you mean") as info:
        resolve_tasks(benchmarks, tasks)
    assert expected in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------ task files


def test_task_file_specs(tmp_path: Path, sts_file: Path, retrieval_dir: Path) -> None:
    assert parse_task_file(str(sts_file)).kind == "sts"
    assert parse_task_file(str(retrieval_dir)).kind == "retrieval"
    named = parse_task_file(f"mine=retrieval:{retrieval_dir}")
    assert (named.kind, named.name) == ("retrieval", "mine")
    data = load_task_file(parse_task_file(f"pairs=sts:{sts_file}"))
    assert data.name == "pairs" and len(data.sts["score"]) == 20 and data.score_range == (0, 5)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"queries": "tiny-retrieval/queries.jsonl", "corpus": "tiny-retrieval/corpus.jsonl",
                                "qrels": "tiny-retrieval/qrels.tsv", "name": "from-spec"}))
    data = load_task_file(parse_task_file(str(spec)))
    assert data.name == "from-spec" and len(data.queries) == 10 and len(data.corpus) == 30


def test_builtin_tasks_come_from_the_held_out_pairs_and_are_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from st_recipe.data import load_pairs

    monkeypatch.setenv("ST_RECIPE_CACHE_DIR", str(tmp_path / "cache"))
    held = load_pairs("builtin", split="test")
    train_anchors = set(load_pairs("builtin", split="train").anchors)
    sts = load_task_file(parse_task_file("builtin:sts"))
    assert sts.name == "builtin-docstring-sts" and sts.score_range == (0, 1)
    assert sorted(set(sts.sts["score"])) == [0, 1] and len(sts.sts["score"]) == 300
    assert not set(sts.sts["sentence1"]) & train_anchors  # never trained on
    again = load_task_file(parse_task_file("other=builtin:sts"))
    assert again.name == "other" and again.revision == sts.revision and again.sts == sts.sts
    ret = load_task_file(parse_task_file("builtin:retrieval"))
    assert ret.kind == "retrieval" and len(ret.queries) == len(ret.corpus) == len(held)
    assert all(docs == {f"d{q[1:]}": 1} for q, docs in ret.qrels.items())


# ------------------------------------------------------------------------- real mteb.evaluate + the cache


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


def test_in_memory_model_needs_a_name(tiny_encoder, sts_file: Path, tmp_path: Path) -> None:
    with pytest.raises(StRecipeError, match="model_name"):
        evaluate(tiny_encoder, task_files=[str(sts_file)], cache_dir=tmp_path / "c", progress=False)
    summary = evaluate(tiny_encoder, task_files=[str(sts_file)], cache_dir=tmp_path / "c", model_name="me/tiny",
                       progress=False)
    assert summary.ok and (tmp_path / "c" / "results" / "me__tiny" / summary.revision / "tiny-sts.json").is_file()
    assert Path(summary.summary_path).parent == tmp_path / "c" / "eval_summaries"


def test_hub_id_is_named_by_id_and_cached_commit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_encoder) -> None:
    import huggingface_hub.constants

    from st_recipe import evaluate as ev

    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someorg--tiny-embed"
    (repo / "snapshots" / sha).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(ev, "_load_st", lambda source, revision=None: tiny_encoder)
    loaded = ev.load_model("someorg/tiny-embed")
    assert (loaded.name, loaded.revision) == ("someorg/tiny-embed", sha)


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


# --------------------------------------------------------------------------------- out-of-memory backoff


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


# ----------------------------------------------------------------------------------------------- the CLI


def test_cli_compare_base_shows_both_columns(fresh_run: Path, sts_file: Path, retrieval_dir: Path, tiny_neox_dir: Path) -> None:
    result = invoke(str(fresh_run), "--task-file", str(sts_file), "--task-file", f"retrieval:{retrieval_dir}",
                    "--compare-base")
    assert result.exit_code == 0, result.output
    print(result.stdout)  # the table, for the report (pytest -s)
    header = next(ln for ln in result.stdout.splitlines() if ln.startswith("task "))
    assert header.split() == ["task", "type", "metric", "score", "base", "diff", "note"]
    assert f"vs base local/{tiny_neox_dir.name}" in result.stdout
    saved = json.loads((fresh_run / "eval_results.json").read_text())
    assert saved["base"]["model_name"] == f"local/{tiny_neox_dir.name}"
    trained = {t["task"]: t["main_score"] for t in saved["tasks"]}
    base = {t["task"]: t["main_score"] for t in saved["base"]["tasks"]}
    assert trained.keys() == base.keys() == {"tiny-sts", "tiny-retrieval"} and trained != base
    results = fresh_run / "mteb_results" / "results"
    assert sorted(p.name for p in results.iterdir()) == sorted([f"local__{tiny_neox_dir.name}", "st-recipe__tiny-run"])
    # the base is filed as an experiment (mean pooling, the run's sequence length) of its own name
    assert list((results / f"local__{tiny_neox_dir.name}").glob("*/experiments/max_seq_length_32__pooling_mean/tiny-sts.json"))

    as_json = invoke(str(fresh_run), "--task-file", str(sts_file), "--task-file", f"retrieval:{retrieval_dir}",
                     "--compare-base", "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["base"]["tasks"]


def test_cli_offline_builtin_task_fails_in_one_line_and_the_rest_run(fresh_run: Path, sts_file: Path, tmp_path: Path) -> None:
    result = invoke(str(fresh_run), "--tasks", "BIOSSES", "--task-file", str(sts_file), "--cache", str(tmp_path / "c"))
    assert result.exit_code == 1, result.output
    failed = [ln for ln in result.output.splitlines() if ln.startswith("failed:")]
    assert len(failed) == 1 and failed[0].startswith("failed: BIOSSES: ") and "--task-file" in failed[0]
    assert "Traceback" not in result.output
    summary = json.loads((fresh_run / "eval_results.json").read_text())
    assert [t["task"] for t in summary["tasks"]] == ["tiny-sts"]
    assert [f["task"] for f in summary["failed"]] == ["BIOSSES"]


def test_cli_eval_merges_per_task_and_failures_keep_earlier_scores(
    fresh_run: Path, sts_file: Path, retrieval_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported loss: an offline paper-15 after a good eval left 0 tasks. Each run now only adds to the file."""
    saved_path = fresh_run / "eval_results.json"
    # Scores of other weights (an earlier training into the same dir) are replaced, never mixed in.
    saved_path.write_text(json.dumps({
        "schema": "st-recipe/eval-summary/1", "model_name": "st-recipe/tiny-run", "revision": "sha256-otherweights",
        "tasks": [{"task": "OldTask", "type": "STS", "main_score_name": "cosine_spearman", "main_score": 0.9,
                   "split": "test", "subsets": ["default"], "languages": ["eng-Latn"]}], "failed": []}))
    first = invoke(str(fresh_run), "--task-file", str(sts_file), "--task-file", f"retrieval:{retrieval_dir}")
    assert first.exit_code == 0, first.output
    assert "another model or revision" in first.stdout
    good = json.loads(saved_path.read_text())
    scores = {t["task"]: t["main_score"] for t in good["tasks"]}
    assert list(scores) == ["tiny-sts", "tiny-retrieval"] and good["kept"] == []

    # Offline, every built-in task fails: the good scores stay, the failures are recorded beside them.
    offline = invoke(str(fresh_run), "--tasks", "BIOSSES,SICK-R")
    assert offline.exit_code == 1, offline.output
    saved = json.loads(saved_path.read_text())
    assert {t["task"]: t["main_score"] for t in saved["tasks"]} == scores
    assert saved["averages"]["n_tasks"] == 2 and saved["kept"] == ["tiny-sts", "tiny-retrieval"]
    assert [(f["task"], f["score_kept"]) for f in saved["failed"]] == [("BIOSSES", False), ("SICK-R", False)]
    # The printout is this run's: its two failures, and how many earlier scores the file keeps.
    assert not [ln for ln in offline.stdout.splitlines() if ln.startswith(("tiny-sts", "tiny-retrieval"))]
    assert "kept 2 earlier scores in eval_results.json" in offline.stdout

    # A task that scored before and fails now keeps its score; the failure says so.
    from sentence_transformers import SentenceTransformer

    def broken(self, *args, **kwargs):
        raise ValueError("encoder broke")

    monkeypatch.setattr(SentenceTransformer, "encode", broken)
    again = invoke(str(fresh_run), "--task-file", str(sts_file), "--overwrite")
    assert again.exit_code == 1, again.output
    assert "failed: tiny-sts: ValueError: encoder broke (the earlier score is kept)" in again.stdout
    saved = json.loads(saved_path.read_text())
    assert {t["task"]: t["main_score"] for t in saved["tasks"]} == scores
    assert {f["task"]: f["score_kept"] for f in saved["failed"]} == {"tiny-sts": True, "BIOSSES": False, "SICK-R": False}

    # Scoring it again replaces its row and clears its failure; the other tasks' entries stay.
    monkeypatch.undo()
    fixed = invoke(str(fresh_run), "--task-file", str(sts_file))
    assert fixed.exit_code == 0, fixed.output
    saved = json.loads(saved_path.read_text())
    assert [t["task"] for t in saved["tasks"]] == ["tiny-sts", "tiny-retrieval"]
    assert [f["task"] for f in saved["failed"]] == ["BIOSSES", "SICK-R"] and saved["kept"] == ["tiny-retrieval"]


def test_cli_bad_inputs_are_one_line_errors(tmp_path: Path, run_dir: Path, sts_file: Path, retrieval_dir: Path) -> None:
    run = str(run_dir)
    assert "paper-15" in one_error_line(invoke(run, "--benchmark", "paper15"))
    assert "Banking77Classification" in one_error_line(invoke(run, "--tasks", "STS12,Banking77Clasification"))

    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n\n{"sentence1": "a", oops}\n')
    assert f"{bad_json}:3: not valid JSON" in one_error_line(invoke(run, "--task-file", f"sts:{bad_json}"))

    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a", "score": 2}\n')
    assert f"{missing}:2: 'sentence2'" in one_error_line(invoke(run, "--task-file", f"sts:{missing}"))

    out_of_range = write_sts(tmp_path / "range.jsonl", header={"score_range": [0, 5]})
    lines = out_of_range.read_text().splitlines()
    lines[4] = json.dumps({"sentence1": "x", "sentence2": "y", "score": 7})
    out_of_range.write_text("\n".join(lines) + "\n")
    message = one_error_line(invoke(run, "--task-file", str(out_of_range)))
    assert f"{out_of_range}:5: score 7 is outside the declared range [0, 5]" in message
    # the flag declares a range too (and overrides the header)
    flagged = one_error_line(invoke(run, "--task-file", str(sts_file), "--score-range", "0,1"))
    assert "outside the declared range [0, 1]" in flagged
    assert "--score-range" in one_error_line(invoke(run, "--task-file", str(sts_file), "--score-range", "five"))

    bad_qrels = write_retrieval(tmp_path / "bad-retrieval")
    (bad_qrels / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\tnope\t1\n")
    assert "qrels.tsv:3: corpus-id 'nope'" in one_error_line(invoke(run, "--task-file", f"retrieval:{bad_qrels}"))
    (tmp_path / "empty").mkdir()
    assert "lacks queries.jsonl, corpus.jsonl" in one_error_line(invoke(run, "--task-file", f"retrieval:{tmp_path / 'empty'}"))
    assert "does not exist" in one_error_line(invoke(run, "--task-file", str(tmp_path / "nope.jsonl")))
    assert "BIOSSES-local=PATH" in one_error_line(invoke(run, "--task-file", f"biosses={sts_file}"))

    not_model = tmp_path / "not-a-model"
    not_model.mkdir()
    (not_model / "notes.txt").write_text("hello")
    assert "is not a model folder" in one_error_line(invoke(str(not_model), "--task-file", str(sts_file)))
    assert "is a file" in one_error_line(invoke(str(not_model / "notes.txt"), "--task-file", str(sts_file)))
    assert "does not exist" in one_error_line(invoke("./no/such/model", "--task-file", str(sts_file)))
    assert "--compare-base needs a run dir" in one_error_line(
        invoke(str(not_model), "--task-file", str(sts_file), "--compare-base"))
    # The CLI or evaluate() itself may catch it first; either way the line names the batch size.
    assert re.search(r"batch[ -]size", one_error_line(invoke(run, "--task-file", str(sts_file), "--batch-size", "0")))
