"""Fixtures of the evaluation tests: a saved run dir, task files, an encode spy; mteb's default cache kept out of home."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# mteb creates its default cache folder at import time; keep that out of the user's home. Nothing is
# written there (every evaluate call here names its cache), and the folder goes when the process ends.
if "MTEB_CACHE" not in os.environ:
    os.environ["MTEB_CACHE"] = tempfile.mkdtemp(prefix="st_recipe_mteb_default_")
    atexit.register(shutil.rmtree, os.environ["MTEB_CACHE"], ignore_errors=True)

from tests.evaluation.helpers import write_retrieval, write_sts  # noqa: E402


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
    info = {"status": "finished", "recipe": {"model": str(tiny_neox_dir), "pooling": "mean", "method": "full", "seed": 0}}
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
