"""Pushes to the localhost Hub: one commit of the allowlist, private repos, load back by repo id, refusals, faults."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.hub_server import HubServer
from tests.publishing.common import GENERATED, MODEL_FILES, PRIVATE, PUBLIC, run_driver
from tests.test_hub_server import fixture_problems

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
    ans = run_driver(hub, calls, work / "hf-offline", HF_ENDPOINT=f"http://127.0.0.1:{closed}")[0]
    line = _one_line_error(ans)
    assert "org/offline" in line and f"127.0.0.1:{closed}" in line
    assert not list(run_dir.parent.glob(".run.publish-*"))  # the staging folder is gone


# ----------------------------------------------------------------------------------------- repo ids


def test_validate_repo_id_rules() -> None:
    from st_recipe.errors import StRecipeError
    from st_recipe.publishing import validate_repo_id

    assert validate_repo_id("org/name-1.0_x") == "org/name-1.0_x"
    assert validate_repo_id("o" * 96 + "/n") == "o" * 96 + "/n"
    for bad in ("a/b/c", "has space/x", "", "org/", "/name", "/", "org/-name", "org/na--me", "org/na..me", "org/x.git",
                "org/" + "n" * 97, "o" * 97 + "/n", "org/na/me", "org", "org/name\n", " org/name", "org/naïve",
                "org/x.GIT", "datasets/foo", "models/foo", "spaces/foo", None, 3):
        with pytest.raises(StRecipeError) as info:
            validate_repo_id(bad)
        assert "\n" not in str(info.value), bad
