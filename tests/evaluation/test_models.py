"""The model to evaluate: in-memory models need a name; Hub ids are named by id and cached commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from st_recipe.errors import StRecipeError
from st_recipe.evaluation import evaluate


def test_in_memory_model_needs_a_name(tiny_encoder, sts_file: Path, tmp_path: Path) -> None:
    with pytest.raises(StRecipeError, match="model_name"):
        evaluate(tiny_encoder, task_files=[str(sts_file)], cache_dir=tmp_path / "c", progress=False)
    summary = evaluate(tiny_encoder, task_files=[str(sts_file)], cache_dir=tmp_path / "c", model_name="me/tiny",
                       progress=False)
    assert summary.ok and (tmp_path / "c" / "results" / "me__tiny" / summary.revision / "tiny-sts.json").is_file()
    assert Path(summary.summary_path).parent == tmp_path / "c" / "eval_summaries"


def test_hub_id_is_named_by_id_and_cached_commit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_encoder) -> None:
    import huggingface_hub.constants

    from st_recipe.evaluation import models as ev

    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someorg--tiny-embed"
    (repo / "snapshots" / sha).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(ev, "_load_st", lambda source, revision=None: tiny_encoder)
    loaded = ev.load_model("someorg/tiny-embed")
    assert (loaded.name, loaded.revision) == ("someorg/tiny-embed", sha)
