"""st-recipe publish against the localhost Hub: push, load back by repo id, card and model-index, refusals, faults.

The client reads HF_ENDPOINT at import time, so every call that talks to the server runs in a subprocess. To
pay the imports once, one driver subprocess runs all the CLI calls of this module in a row (the order matters:
the injected faults hit its first two calls); the tests below each check their slice of its answers.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub_server import HubServer
from tests.test_hub_server import fixture_problems, run_client

PUBLIC = "org/tiny-embed"
PRIVATE = "org/tiny-embed-private"
SENTENCES = ["a short sentence about cats", "another sentence, a little longer than the first", "x"]
MODEL_FILES = {
    "1_Pooling/config.json", "config.json", "config_sentence_transformers.json", "model.safetensors", "modules.json",
    "sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json",
}
RANDOM_BASE = {"model": "random:pythia-14m", "load_id": "random:pythia-14m", "random_init": True}
GENERATED = {"README.md", "st_recipe.json", "eval_results.json", "mteb_model_meta.json", "assets/training_loss.png"}

_DRIVER = """
from click.testing import CliRunner
from st_recipe.cli import main

answers = []
for call in json.loads(Path("CALLS").read_text()):
    r = CliRunner().invoke(main, call["args"], env=call.get("env"))
    crash = None if r.exception is None or isinstance(r.exception, SystemExit) else repr(r.exception)
    answers.append({"name": call["name"], "code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr, "crash": crash})
result(answers)
"""


def sample_results(path: Path, model_name: str = PUBLIC, *, with_base: bool = True) -> dict[str, Any]:
    """An eval summary in the schema `st-recipe eval` writes: two mteb tasks, one local task, a base model."""

    def row(task: str, kind: str, metric: str, score: float, subsets: list[str], source: str = "mteb") -> dict[str, Any]:
        return {"task": task, "type": kind, "main_score_name": metric, "main_score": score, "split": "test",
                "subsets": subsets, "languages": ["eng-Latn"], "source": source, "cached": False}

    summary = {
        "schema": "st-recipe/eval-summary/1", "model_name": model_name, "revision": "sha256-0123456789abcdef",
        "tasks": [row("BIOSSES", "STS", "cosine_spearman", 0.41234, ["default"]),
                  row("STS22", "STS", "cosine_spearman", 0.30125, ["en"]),
                  row("Banking77Classification", "Classification", "accuracy", 0.55671, ["default"]),
                  row("my-sts", "STS", "cosine_spearman", 0.25, ["default"], source="local")],
        "averages": {"overall": 0.38}, "failed": [],
        "base": None,
    }
    if with_base:
        summary["base"] = {"model_name": "local/tiny-neox", "revision": "sha256-aaaa", "averages": {}, "failed": [],
                           "tasks": [row("BIOSSES", "STS", "cosine_spearman", 0.2, ["default"]),
                                     row("Banking77Classification", "Classification", "accuracy", 0.3, ["default"])]}
    path.write_text(json.dumps(summary, indent=2))
    return summary


LONG_ERROR = ("could not load its data from the Hub (Couldn't reach 'mteb/{task}' on the Hub (LocalEntryNotFoundError) "
              + "x" * 150 + "); offline? evaluate a local copy with --task-file")


def all_failed_results(path: Path, scored: list[dict[str, Any]] | None = None) -> Path:
    """A summary as an offline `eval --benchmark paper-15` leaves it: 15 long failures, and `scored` rows if given."""
    from st_recipe.evaluate import PAPER_15_TASKS

    failed = [{"task": t, "error": LONG_ERROR.format(task=t), "score_kept": any(r["task"] == t for r in scored or [])}
              for t in PAPER_15_TASKS]
    path.write_text(json.dumps({"schema": "st-recipe/eval-summary/1", "model_name": PUBLIC, "revision": "sha256-x",
                                "tasks": scored or [], "averages": {}, "failed": failed, "base": None}))
    return path


def write_frontier(path: Path) -> Path:
    """A fitted-law file as `st-recipe fit` writes it, from a small synthetic sweep around the run's budget."""
    import yaml

    from st_recipe.scaling import Point, fit_points

    points = [Point("full", "m", b, 30 * b ** -0.1, 1000, 1) for b in (1e8, 1e9, 1e10)]
    points += [Point("lora", "m", b, 20 * b ** -0.08, 1000, 1) for b in (1e8, 1e9, 1e10)]
    path.write_text(yaml.safe_dump({"fitted": fit_points(points, source="a synthetic sweep").to_dict()}))
    return path


def copy_run(run_dir: Path, dst: Path) -> Path:
    """A private copy of the run dir for a test that changes it."""
    shutil.copytree(run_dir, dst)
    return dst


def edit_record(run: Path, **changes: Any) -> None:
    rec = json.loads((run / "st_recipe.json").read_text())
    rec.update(changes)
    (run / "st_recipe.json").write_text(json.dumps(rec))


def all_text(root: Path) -> Iterator[tuple[Path, bytes]]:
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            yield p, p.read_bytes()


# ----------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_neox_dir: Path) -> Path:
    """A real finished run of the tiny GPT-NeoX (LoRA, merged), trained once for the module."""
    from st_recipe.recipes import Recipe
    from st_recipe.training import train

    out = tmp_path_factory.mktemp("publish-run") / "run"
    train(Recipe(model=str(tiny_neox_dir), method="lora", method_args={"r": 4}, pairs=64, batch_size=16,
                 learning_rate=1e-3, budget=2e9, max_seq_length=32), "builtin", out, quiet=True)
    return out


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("publish-work")


@pytest.fixture(scope="module")
def driver(hub: HubServer, run_dir: Path, work: Path) -> dict[str, dict[str, Any]]:
    """Every CLI call of the module, run in one subprocess pointed at the server; answers by name."""
    # The public run carries eval's own leftovers (summary and result cache): tolerated, and the summary is used.
    public_run = copy_run(run_dir, work / "public-run")
    sample_results(public_run / "eval_results.json")
    (public_run / "mteb_results" / "results").mkdir(parents=True)
    (public_run / "mteb_results" / "results" / "BIOSSES.json").write_text("{}")
    private_results = work / "private-results.json"
    sample_results(private_results, PRIVATE, with_base=False)
    frontier = write_frontier(work / "fitted.yaml")

    unfinished = copy_run(run_dir, work / "unfinished")
    edit_record(unfinished, status="running")
    no_record = copy_run(run_dir, work / "no-record")
    (no_record / "st_recipe.json").unlink()
    random_run = copy_run(run_dir, work / "random")
    edit_record(random_run, random_init=True, model=RANDOM_BASE)
    adapter = copy_run(run_dir, work / "adapter")
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/home/someone/pythia"}))
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    stray = copy_run(run_dir, work / "stray")
    (stray / "notes.txt").write_text("private notes")
    (stray / "checkpoints").mkdir()
    (stray / "checkpoints" / "optimizer.pt").write_bytes(b"\0")

    def call(name: str, *args: str, env: dict[str, str | None] | None = None) -> dict[str, Any]:
        return {"name": name, "args": ["publish", *args], "env": env}

    run = str(run_dir)
    # The pushes that test the transport and the token have no eval summary: they say so with --no-scores.
    calls = [
        # The two faults injected below hit these first two pushes, in this order.
        call("lfs_fault", run, "--repo", "org/fault-lfs", "--no-scores"),
        call("commit_fault", run, "--repo", "org/fault-commit", "--no-scores"),
        call("public", str(public_run), "--repo", PUBLIC, "--frontier", str(frontier)),
        call("republish", str(public_run), "--repo", PUBLIC, "--frontier", str(frontier)),
        call("private", run, "--repo", PRIVATE, "--private", "--results", str(private_results),
             "--commit-message", "first private push"),
        call("private_again_public", run, "--repo", PUBLIC, "--private", "--no-scores"),
        call("no_token", run, "--repo", "org/no-token", "--no-scores", env={"HF_TOKEN": None}),
        call("read_token", run, "--repo", "org/read-only", "--no-scores", env={"HF_TOKEN": hub.read_token}),
        call("bad_token", run, "--repo", "org/bad-token", "--no-scores", env={"HF_TOKEN": "hf_not_a_token_of_this_hub"}),
        call("no_branch", run, "--repo", PUBLIC, "--revision", "nope", "--no-scores"),
        call("unfinished", str(unfinished), "--repo", "org/unfinished"),
        call("no_record", str(no_record), "--repo", "org/no-record"),
        call("random", str(random_run), "--repo", "org/random"),
        call("adapter", str(adapter), "--repo", "org/adapter"),
        call("stray", str(stray), "--repo", "org/stray"),
        call("repo_abc", run, "--repo", "a/b/c"),
        call("repo_space", run, "--repo", "has space/x"),
        call("repo_empty", run, "--repo", ""),
        call("repo_none", run),
        call("no_results", run, "--repo", "org/no-results", "--results", str(work / "absent.json")),
        # No summary at all, and one where every task failed: refused before any request, token or not.
        call("no_scores", run, "--repo", "org/no-scores"),
        call("all_failed", run, "--repo", "org/all-failed", "--results", str(all_failed_results(work / "failed.json"))),
    ]
    (work / "calls.json").write_text(json.dumps(calls))
    hub.inject_fault("lfs_put_403")
    hub.inject_fault("commit_500")
    try:
        answers = _run_driver(hub, work / "calls.json", work / "hf-driver")
        assert hub.pending_faults() == {}, "the injected faults were not all hit"
    finally:
        hub.clear_faults()
    return {a["name"]: a for a in answers}


def _run_driver(hub: HubServer, calls: Path, hf_home: Path, **env: str) -> list[dict[str, Any]]:
    return run_client(hub, _DRIVER.replace("CALLS", str(calls)), hf_home, timeout=300, **env)


@pytest.fixture(scope="module")
def loaded(hub: HubServer, driver: dict[str, Any], run_dir: Path, work: Path) -> dict[str, Any]:
    """What a fresh process that never imports st_recipe sees when it loads the published models."""
    return run_client(hub, f"""
        import numpy as np
        from huggingface_hub import ModelCard
        from sentence_transformers import SentenceTransformer

        def attempt(fn):
            try:
                return fn(), None
            except Exception as err:
                return None, type(err).__name__

        local = SentenceTransformer({str(run_dir)!r}, device="cpu").encode({SENTENCES!r})
        public = SentenceTransformer({PUBLIC!r}, device="cpu").encode({SENTENCES!r})
        card = ModelCard.load({PUBLIC!r})
        _, anonymous_private = attempt(lambda: SentenceTransformer({PRIVATE!r}, device="cpu"))
        private = SentenceTransformer({PRIVATE!r}, device="cpu", token={hub.read_token!r}).encode({SENTENCES!r})
        result({{
            "public_diff": float(np.abs(local - public).max()),
            "private_diff": float(np.abs(local - private).max()),
            "anonymous_private": anonymous_private,
            "st_recipe_imported": "st_recipe" in sys.modules,
            "card": card.data.to_dict(),
            "evals": [{{"task_type": e.task_type, "dataset_name": e.dataset_name, "dataset_type": e.dataset_type,
                        "config": e.dataset_config, "split": e.dataset_split, "metric_type": e.metric_type,
                        "value": e.metric_value}} for e in card.data.eval_results or []],
        }})
        """, work / "hf-load", token=None)


# ----------------------------------------------------------------------------------------- pushes


def test_publish_pushes_one_commit_of_the_allowlist(hub: HubServer, driver: dict[str, Any]) -> None:
    """The public push: one commit holding exactly the model files and what publish generates."""
    ans = driver["public"]
    assert ans["code"] == 0, ans
    assert f"published {PUBLIC}" in ans["stdout"]
    commits = hub.commits(PUBLIC)
    assert [c["title"] for c in commits][1:] == ["initial commit"]
    files = set(hub.repo_files(PUBLIC))
    assert files == MODEL_FILES | GENERATED | {"assets/frontier.png", ".gitattributes"}
    assert "model.safetensors" in hub.lfs_files(PUBLIC)
    # An unchanged republish makes no new commit.
    assert driver["republish"]["code"] == 0 and len(hub.commits(PUBLIC)) == 2
    assert not fixture_problems(hub)


def test_published_files_match_the_run_and_hold_no_local_paths(hub: HubServer, run_dir: Path, tiny_neox_dir: Path) -> None:
    stored = hub.repo_files(PUBLIC)
    for rel in MODEL_FILES:
        assert stored[rel] == (run_dir / rel).read_bytes(), rel
    record = json.loads(stored["st_recipe.json"])
    assert record["repo_id"] == PUBLIC and record["status"] == "finished"
    # The run it came from, by content: the same revision eval files its scores under.
    from st_recipe.evaluate import folder_revision

    assert record["source_run"]["model_revision"] == folder_revision(run_dir)
    assert record["recipe"]["model"] == "<local>/" + tiny_neox_dir.name
    for rel, data in stored.items():
        assert str(tiny_neox_dir).encode() not in data, rel
        assert str(run_dir.parent).encode() not in data, rel
    meta = json.loads(stored["mteb_model_meta.json"])
    assert meta["name"] == PUBLIC and meta["revision"] == "sha256-0123456789abcdef"
    assert meta["embed_dim"] == 32 and meta["max_tokens"] == 32 and meta["n_parameters"] > 0
    assert meta["framework"] == ["Sentence Transformers", "PyTorch"] and meta["similarity_fn_name"] == "cosine"
    assert meta["languages"] == ["eng-Latn"] and meta["open_weights"] is True
    assert meta["adapted_from"] is None  # a local base is not claimed to be a Hub model
    assert json.loads(stored["eval_results.json"])["tasks"][0]["task"] == "BIOSSES"
    assert stored["assets/training_loss.png"].startswith(b"\x89PNG")


def test_card_content(hub: HubServer) -> None:
    """Usage, provenance, FLOPs, MTEB table with base and difference, held-out scores, limitations, citations."""
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


def test_private_repo_and_commit_message(hub: HubServer, driver: dict[str, Any]) -> None:
    assert driver["private"]["code"] == 0, driver["private"]
    assert "(private)" in driver["private"]["stdout"]
    assert hub.commits(PRIVATE)[0]["title"] == "first private push"
    card = hub.repo_files(PRIVATE)["README.md"].decode()
    assert "| base |" not in card and "| BIOSSES | STS | cosine_spearman | 0.4123 |" in card
    # --private on an existing public repo is refused rather than silently publishing in the open.
    ans = driver["private_again_public"]
    assert ans["code"] == 2 and "already exists and is public" in ans["stderr"]


def test_loads_back_by_repo_id_in_a_process_without_st_recipe(loaded: dict[str, Any]) -> None:
    assert loaded["st_recipe_imported"] is False
    assert loaded["public_diff"] <= 1e-5
    assert loaded["anonymous_private"] is not None  # invisible without a token
    assert loaded["private_diff"] <= 1e-5


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


# ----------------------------------------------------------------------------------------- failures


def _one_line_error(ans: dict[str, Any]) -> str:
    assert ans["crash"] is None, ans
    assert ans["code"] == 2, ans
    lines = ans["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), ans["stderr"]
    assert "Traceback" not in ans["stdout"] + ans["stderr"]
    return lines[0]


@pytest.mark.parametrize("name, repo, status", [("lfs_fault", "org/fault-lfs", "HTTP 403"),
                                                ("commit_fault", "org/fault-commit", "HTTP 500")])
def test_server_error_mid_upload_leaves_no_partial_commit(hub: HubServer, driver: dict[str, Any], run_dir: Path,
                                                          name: str, repo: str, status: str) -> None:
    line = _one_line_error(driver[name])
    assert repo in line and status in line
    assert [c["title"] for c in hub.commits(repo)] == ["initial commit"]
    assert set(hub.repo_files(repo)) == {".gitattributes"}
    assert not list(run_dir.parent.glob(".*publish-*"))  # the staging folder went with the failure


def test_token_problems(hub: HubServer, driver: dict[str, Any]) -> None:
    assert "no Hugging Face token" in _one_line_error(driver["no_token"])
    assert not hub.repo_exists("org/no-token")
    line = _one_line_error(driver["read_token"])
    assert "org/read-only" in line and "HTTP 403" in line
    assert not hub.repo_exists("org/read-only")
    line = _one_line_error(driver["bad_token"])
    assert "org/bad-token" in line and "HTTP 401" in line and "hf_not_a_token" not in line
    assert not hub.repo_exists("org/bad-token")
    line = _one_line_error(driver["no_branch"])
    assert "no branch 'nope'" in line and len(hub.commits(PUBLIC)) == 2


@pytest.mark.parametrize("name, words", [
    ("unfinished", "did not finish"),
    ("no_record", "not a finished st-recipe run"),
    ("random", "--allow-random"),
    ("adapter", "unmerged adapter (adapter_config.json, adapter_model.safetensors)"),
    ("stray", "checkpoints/optimizer.pt, notes.txt"),
    ("repo_abc", "invalid repo id 'a/b/c'"),
    ("repo_space", "invalid repo id 'has space/x'"),
    ("repo_empty", "repo id is empty"),
    ("repo_none", "repo id is empty"),
    ("no_results", "absent.json' does not exist"),
    ("no_scores", "run `st-recipe eval"),
    ("all_failed", "has no scored task"),
])
def test_refusals_are_one_line_and_upload_nothing(hub: HubServer, driver: dict[str, Any], name: str, words: str) -> None:
    line = _one_line_error(driver[name])
    assert words in line
    repo = f"org/{name.replace('_', '-')}"
    assert not hub.repo_exists(repo)
    assert not [e for e in hub.request_log() if repo in e["path"]]


def test_unreachable_endpoint(hub: HubServer, run_dir: Path, work: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    calls = work / "offline-calls.json"
    calls.write_text(json.dumps([{"name": "x", "args": ["publish", str(run_dir), "--repo", "org/offline", "--no-scores"]}]))
    ans = _run_driver(hub, calls, work / "hf-offline", HF_ENDPOINT=f"http://127.0.0.1:{closed}")[0]
    line = _one_line_error(ans)
    assert "org/offline" in line and f"127.0.0.1:{closed}" in line
    assert not list(run_dir.parent.glob(".run.publish-*"))  # the staging folder is gone


# ----------------------------------------------------------------------------------------- dry run, token


def test_dry_run_writes_exactly_the_upload_and_no_token(run_dir: Path, work: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: no token needed, nothing contacted (the test session is offline); random runs need the flag."""
    from click.testing import CliRunner

    from st_recipe.cli import main
    from st_recipe.cli_publish import publish_cmd

    main.add_command(publish_cmd)
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


def test_hub_base_gets_base_model_license_and_dataset(run_dir: Path, tmp_path: Path) -> None:
    """A catalogued Hub base and a Hub dataset appear in the metadata; propulsion runs cite Propulsion."""
    from huggingface_hub import ModelCard

    from st_recipe.publish import publish

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


def test_the_token_is_never_written(hub: HubServer, driver: dict[str, Any], loaded: dict[str, Any], work: Path) -> None:
    """Neither token shows up in any output, any stored repo file, or any file under the module's folders."""
    tokens = [hub.token.encode(), hub.read_token.encode()]
    for ans in driver.values():
        for t in tokens:
            assert t not in (ans["stdout"] + ans["stderr"]).encode(), ans["name"]
    for repo in (PUBLIC, PRIVATE):
        for rel, data in hub.repo_files(repo).items():
            assert not any(t in data for t in tokens), (repo, rel)
    for path, data in all_text(work):
        if path.name == "calls.json":
            continue  # the test's own instructions to the driver name the read token
        assert not any(t in data for t in tokens), path


def test_validate_repo_id_rules() -> None:
    from st_recipe.errors import StRecipeError
    from st_recipe.publish import validate_repo_id

    assert validate_repo_id("org/name-1.0_x") == "org/name-1.0_x"
    assert validate_repo_id("o" * 96 + "/n") == "o" * 96 + "/n"
    for bad in ("a/b/c", "has space/x", "", "org/", "/name", "/", "org/-name", "org/na--me", "org/na..me", "org/x.git",
                "org/" + "n" * 97, "o" * 97 + "/n", "org/na/me", "org", "org/name\n", " org/name", "org/naïve",
                "org/x.GIT", "datasets/foo", "models/foo", "spaces/foo", None, 3):
        with pytest.raises(StRecipeError) as info:
            validate_repo_id(bad)
        assert "\n" not in str(info.value), bad




# ----------------------------------------------------------------------------------------- what a dry run may replace


def dry(run: Path, target: Path, *extra: str):
    from click.testing import CliRunner

    from st_recipe.cli import main

    return CliRunner().invoke(main, ["publish", str(run), "--repo", PUBLIC, "--dry-run", str(target), *extra])


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): data for p, data in all_text(root)}


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
