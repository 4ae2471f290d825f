"""st_recipe.hub.access: offline switches, the endpoint probe (against the localhost Hub) and the cache checks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from st_recipe import StRecipeError
from st_recipe.hub import access as hub_access
from tests.hub_server import HubServer


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No offline switch set, a fresh probe; os.environ and huggingface_hub's flag restored afterwards."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)
    hub_access._probe.cache_clear()
    yield
    hub_access._probe.cache_clear()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, online: None) -> Iterator[HubServer]:
    """The localhost Hub as HF_ENDPOINT."""
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


@pytest.fixture
def hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty huggingface_hub cache."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def _cache_model(cache: Path, repo_id: str, commit: str = "0" * 40, ref: str = "main") -> None:
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / ref).write_text(commit)
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "snapshots" / commit / "config.json").write_text("{}")


@pytest.mark.parametrize("name", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
@pytest.mark.parametrize("value, offline", [("1", True), ("true", True), ("YES", True), (" on ", True),
                                            ("0", False), ("false", False), ("", False), ("offline", False)])
def test_offline_switches_read_as_huggingface_hub_reads_them(monkeypatch, online, name, value, offline):
    monkeypatch.setenv(name, value)
    assert hub_access.offline_requested() is offline


def test_no_switch_means_online(online):
    assert hub_access.offline_requested() is False


def test_endpoint_default_and_override(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert hub_access.endpoint() == "https://huggingface.co"
    monkeypatch.setenv("HF_ENDPOINT", "")
    assert hub_access.endpoint() == hub_access.DEFAULT_ENDPOINT
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/mirror//")
    assert hub_access.endpoint() == "http://127.0.0.1:9/mirror"


def test_a_running_hub_is_usable(hub):
    assert hub_access.hub_reachable()
    assert hub_access.unavailable_reason() is None
    # With the Hub there, nothing needs the cache: requirements pass for ids that are not cached anywhere.
    hub_access.require_hub("publishing org/model")
    hub_access.require_dataset("org/never-cached")
    hub_access.require_model("org/never-cached")
    assert [(r["method"], r["path"]) for r in hub.request_log()] == [("HEAD", "/")]  # asked once per process


def test_the_probe_never_sends_the_token(hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", hub.token)
    assert hub_access.hub_reachable()
    log = hub.request_log()
    assert log and not any(r["auth"] for r in log)


def test_offline_mode_never_probes(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_access.unavailable_reason() == "HF_HUB_OFFLINE=1 is set"
    with pytest.raises(StRecipeError, match="HF_HUB_OFFLINE=1 is set"):
        hub_access.require_hub("publishing org/model")
    assert hub.request_log() == []


def test_a_malformed_endpoint_is_unreachable_not_a_crash(monkeypatch, online):
    monkeypatch.setenv("HF_ENDPOINT", "not a url")
    assert hub_access.hub_reachable() is False
    assert hub_access.unavailable_reason() == "the Hub (not a url) is unreachable"


def test_require_hub_is_one_line_with_the_hint(monkeypatch, online):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(StRecipeError) as info:
        hub_access.require_hub("publishing org/model", "pass --dry-run DIR")
    assert str(info.value) == "publishing org/model needs the Hugging Face Hub, but HF_HUB_OFFLINE=1 is set; pass --dry-run DIR"
    with pytest.raises(StRecipeError) as info:
        hub_access.require_hub("uploading")
    assert str(info.value) == "uploading needs the Hugging Face Hub, but HF_HUB_OFFLINE=1 is set"


def test_model_in_cache_needs_the_config_of_that_revision(hub_cache):
    commit = "a" * 40
    _cache_model(hub_cache, "org/cached", commit)
    assert hub_access.model_in_cache("org/cached")
    assert hub_access.model_in_cache("org/cached", revision=commit)
    assert not hub_access.model_in_cache("org/cached", revision="v2")
    assert not hub_access.model_in_cache("org/other")
    assert not hub_access.model_in_cache("not a valid / repo id")


def test_dataset_in_cache_looks_in_both_caches(monkeypatch, hub_cache, tmp_path):
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert not hub_access.dataset_in_cache("org/pairs")
    (hub_cache / "datasets--org--pairs").mkdir()
    assert hub_access.dataset_in_cache("org/pairs")
    assert not hub_access.dataset_in_cache("org/other")
    (tmp_path / "home" / "datasets" / "org___other").mkdir(parents=True)  # the datasets library's own cache
    assert hub_access.dataset_in_cache("org/other")
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "huggingface" / "datasets" / "org___third").mkdir(parents=True)
    assert hub_access.dataset_in_cache("org/third")


def test_require_model_names_the_way_out(monkeypatch, online, hub_cache):
    monkeypatch.setattr(hub_access, "hub_reachable", lambda timeout=0: False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(StRecipeError) as info:
        hub_access.require_model("org/missing", what="teacher", instead="pass --teacher DIR")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("teacher 'org/missing' would come from the Hugging Face Hub")
    assert "the Hub (http://127.0.0.1:9) is unreachable" in message
    assert "hf download org/missing --local-dir DIR" in message and message.endswith("pass --teacher DIR")
    assert "HF_HUB_OFFLINE" not in os.environ  # a refusal does not switch the process to the cache


def test_unreachable_hub_with_a_cached_dataset_switches_to_the_cache(monkeypatch, online, hub_cache):
    from huggingface_hub import constants

    monkeypatch.setattr(hub_access, "hub_reachable", lambda timeout=0: False)
    (hub_cache / "datasets--org--pairs").mkdir()
    hub_access.require_dataset("org/pairs")
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True


def test_unreachable_hub_without_a_cached_dataset_is_one_line(monkeypatch, online, hub_cache, tmp_path):
    monkeypatch.setattr(hub_access, "hub_reachable", lambda timeout=0: False)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(StRecipeError) as info:
        hub_access.require_dataset("org/pairs")
    assert str(info.value) == ("data 'org/pairs' is a Hugging Face Hub dataset and not in the local cache, but the Hub "
                               "(http://127.0.0.1:9) is unreachable; use a local file (.jsonl, .csv, .tsv, .parquet) "
                               "or 'builtin' instead")
    assert "HF_HUB_OFFLINE" not in os.environ
