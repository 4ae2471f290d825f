"""Reading config.json: local folders and files, catalogue names, and the Hub (cache, offline, unreachable)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from st_recipe.errors import StRecipeError
from st_recipe.models import config as model_config
from st_recipe.models import meta
from st_recipe.models.catalog import CATALOG
from tests.model_configs import FULL


def test_read_config_local_folder_file_and_catalogue(tiny_neox_dir: Path) -> None:
    from_folder = model_config.read_config(str(tiny_neox_dir))
    assert from_folder["model_type"] == "gpt_neox" and from_folder["hidden_size"] == 32
    assert model_config.read_config(str(tiny_neox_dir / "config.json")) == from_folder
    spec = CATALOG["pythia-160m"]
    for name in ("pythia-160m", "EleutherAI/pythia-160m", "random:pythia-160m"):
        assert model_config.read_config(name) == model_config.catalogue_config(spec)
    # The synthesised config is the catalogue's own transformers config.
    ours = meta.build_hf_config(model_config.catalogue_config(spec)).to_dict()
    theirs = spec.hf_config().to_dict()
    for key in ("_name_or_path", "architectures", "transformers_version"):
        ours.pop(key, None), theirs.pop(key, None)
    assert ours == theirs


def test_read_config_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(StRecipeError, match="has no config.json"):
        model_config.read_config(str(tmp_path))
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(StRecipeError, match="not a JSON object"):
        model_config.read_config(str(tmp_path))


def test_hub_id_offline_fails_fast_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(StRecipeError) as info:
        model_config.read_config("st-recipe-tests/surely-not-cached-model")
    assert time.perf_counter() - start < 2
    message = str(info.value)
    assert "\n" not in message and "local folder" in message and "HF_HUB_OFFLINE" in message


def test_hub_id_unreachable_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    start = time.perf_counter()
    with pytest.raises(StRecipeError, match="unreachable.*local folder"):
        model_config.read_config("st-recipe-tests/surely-not-cached-model")
    assert time.perf_counter() - start < 5


def test_hub_id_read_from_cache_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants

    commit = "0" * 40
    snapshot = tmp_path / "models--org--cached-model" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(FULL["SmolLM2-135M"]))
    (tmp_path / "models--org--cached-model" / "refs").mkdir()
    (tmp_path / "models--org--cached-model" / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert model_config.read_config("org/cached-model") == FULL["SmolLM2-135M"]
    assert not any(p.suffix == ".safetensors" for p in tmp_path.rglob("*"))
