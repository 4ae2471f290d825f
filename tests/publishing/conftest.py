"""Fixtures of the publish tests: one trained run, one localhost Hub and one driver run for the whole package.

The client reads HF_ENDPOINT at import time, so every call that talks to the server runs in a subprocess. To
pay the imports once, one driver subprocess runs all the CLI calls of this package in a row (the order matters:
the injected faults hit its first two calls); the tests each check their slice of its answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub_server import HubServer
from tests.publishing.common import (
    PRIVATE,
    PUBLIC,
    RANDOM_BASE,
    SENTENCES,
    all_failed_results,
    copy_run,
    edit_record,
    run_driver,
    sample_results,
    write_frontier,
)
from tests.test_hub_server import run_client


@pytest.fixture(scope="package")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_neox_dir: Path) -> Path:
    """A real finished run of the tiny GPT-NeoX (LoRA, merged), trained once for the package."""
    from st_recipe.planning.recipes import Recipe
    from st_recipe.training import train

    out = tmp_path_factory.mktemp("publish-run") / "run"
    train(Recipe(model=str(tiny_neox_dir), method="lora", method_args={"r": 4}, pairs=64, batch_size=16,
                 learning_rate=1e-3, budget=2e9, max_seq_length=32), "builtin", out=out, quiet=True)
    return out


@pytest.fixture(scope="package")
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


@pytest.fixture(scope="package")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("publish-work")


@pytest.fixture(scope="package")
def driver(hub: HubServer, run_dir: Path, work: Path) -> dict[str, dict[str, Any]]:
    """Every CLI call of the package, run in one subprocess pointed at the server; answers by name."""
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
        answers = run_driver(hub, work / "calls.json", work / "hf-driver")
        assert hub.pending_faults() == {}, "the injected faults were not all hit"
    finally:
        hub.clear_faults()
    return {a["name"]: a for a in answers}


@pytest.fixture(scope="package")
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
