"""Nothing private goes up: no local path in any published file, and the token nowhere at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.hub_server import HubServer
from tests.publishing.common import MODEL_FILES, PRIVATE, PUBLIC, all_text

# ----------------------------------------------------------------------------------------- local paths


def test_published_files_match_the_run_and_hold_no_local_paths(hub: HubServer, driver: dict[str, Any], run_dir: Path,
                                                               tiny_neox_dir: Path) -> None:
    # `driver` made the pushes whose files are read here.
    stored = hub.repo_files(PUBLIC)
    for rel in MODEL_FILES:
        assert stored[rel] == (run_dir / rel).read_bytes(), rel
    record = json.loads(stored["st_recipe.json"])
    assert record["repo_id"] == PUBLIC and record["status"] == "finished"
    # The run it came from, by content: the same revision eval files its scores under.
    from st_recipe.evaluation import folder_revision

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


# ----------------------------------------------------------------------------------------- the token


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
