"""Shared fixtures: tiny offline decoder models saved once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the Hub; make any accidental attempt fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests import kit  # noqa: E402


@pytest.fixture(scope="session")
def tiny_neox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-NeoX causal LM folder (hidden 32, 2 layers) with its tokenizer."""
    return kit.make_tiny_gptneox(tmp_path_factory.mktemp("tiny-neox"))


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama-style causal LM folder (no biases) with its tokenizer."""
    return kit.make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2-style causal LM folder (qkv biases, GQA, tied embeddings) with its tokenizer."""
    return kit.make_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen"))


@pytest.fixture
def tiny_encoder(tiny_neox_dir: Path):
    """A fresh mean-pooled encoder over the tiny GPT-NeoX (methods mutate it, so one per test)."""
    from st_recipe import build_encoder

    return build_encoder(str(tiny_neox_dir), max_seq_length=32)
