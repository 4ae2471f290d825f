"""Models built on the meta device: no memory allocated, and methods counted exactly as on real encoders."""

from __future__ import annotations

import copy
import resource
from pathlib import Path
from typing import Any

import pytest

from st_recipe.errors import StRecipeError
from st_recipe.methods import get_method
from st_recipe.models import config as model_config
from st_recipe.models import meta, shapes
from tests.model_configs import FULL, TINY


def test_meta_build_allocates_no_memory() -> None:
    """A 7B model and its LoRA adapters live on the meta device: no parameter has storage."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = FULL["Mistral-7B-v0.1"]
    model = meta.meta_model(config)
    tensors = list(model.parameters()) + list(model.buffers())
    assert tensors and all(t.device.type == "meta" for t in tensors)
    assert sum(p.numel() for p in model.parameters()) > 7e9
    encoder = meta._Encoder(meta.meta_model(config))
    import torch

    with torch.device("meta"):
        get_method("lora").apply(encoder)
    adapted = encoder[0].model
    assert any("lora_A" in n for n, _ in adapted.named_parameters())
    assert all(t.device.type == "meta" for t in list(adapted.parameters()) + list(adapted.buffers()))
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 2**20, f"peak RSS grew by {grown_kib / 2**10:.0f} MiB"  # 28 GiB if weights were real


# ------------------------------------------------------------------------------- methods on meta vs real


def _methods(emb: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("full", {}),
        ("freeze", {"blocks": 1}),
        ("freeze", {"fraction": 0.5}),
        ("bias", {}),
        ("lora", {}),
        ("lora", {"targets": [emb]}),
        ("lora", {"targets": ["q_proj", "v_proj"], "r": 4}),
        ("lora", {"use_dora": True, "r": 8}),
        ("propulsion", {}),
        ("propulsion", {"targets": ["down_proj", emb]}),
        ("peft", {"peft_type": "ia3"}),
        ("peft", {"peft_type": "loha"}),
        ("peft", {"peft_type": "lokr"}),
        ("peft", {"peft_type": "vera"}),
    ]


def _save_tiny(path: Path, model_type: str) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tests import kit

    tok = kit.tiny_tokenizer()
    config = AutoConfig.for_model(
        model_type,
        vocab_size=640,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> dict[str, Path]:
    return {"llama": tiny_llama_dir, "qwen2": _save_tiny(tmp_path_factory.mktemp("tiny-qwen2"), "qwen2")}


@pytest.fixture(scope="module")
def real_encoders(tiny_folders: dict[str, Path]) -> dict[str, Any]:
    from st_recipe import build_encoder

    return {k: build_encoder(str(p), max_seq_length=16) for k, p in tiny_folders.items()}


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_meta_counts_equal_real_apply(arch: str, tiny_folders: dict[str, Path], real_encoders: dict[str, Any]) -> None:
    config = model_config.read_config(str(tiny_folders[arch]))
    assert config["model_type"] == arch
    checked = 0
    for name, args in _methods("embed_tokens"):
        try:
            real = get_method(name, **args).apply(copy.deepcopy(real_encoders[arch]))
        except StRecipeError as exc:
            # Only Llama lacks biases; the meta build must refuse in the same words.
            assert (arch, name) == ("llama", "bias")
            with pytest.raises(StRecipeError, match="no bias parameters"):
                meta.meta_counts(config, get_method(name, **args))
            assert "no bias parameters" in str(exc)
            continue
        n, nt, report = meta.meta_counts(config, get_method(name, **args))
        assert (n, nt) == (real.n_params, real.n_trainable), f"{arch} {name}{args}"
        assert report == real
        checked += 1
    assert checked == (13 if arch == "llama" else 14)


def test_meta_counts_shape_is_model_shape(tiny_folders: dict[str, Path]) -> None:
    config = model_config.read_config(str(tiny_folders["qwen2"]))
    shape = shapes.shape_from_config(config, str(tiny_folders["qwen2"]))
    n, nt, _ = meta.meta_counts(config, get_method("full"))
    assert shape.n_params == n == nt
    assert shape.name == tiny_folders["qwen2"].name


# Where a method with default targets cannot apply to an architecture, and why (PEFT's and Propulsion's limits).
_EXPECTED_REFUSALS = {
    ("gpt2", "propulsion"): "Conv1D",
    ("gpt2", "loha"): "Conv1D",
    ("gpt2", "lokr"): "Conv1D",
    ("phi3", "ia3"): "target_modules",
    ("phi3", "loha"): "target_modules",
    ("phi3", "lokr"): "target_modules",
    ("phi3", "vera"): "target_modules",
}


@pytest.mark.parametrize(
    "arch", ["gpt_neox", "mistral", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3", "gpt2", "opt"]
)
def test_every_method_applies_on_meta(arch: str) -> None:
    config = TINY[arch]
    emb = {"gpt_neox": "embed_in", "gpt2": "wte"}.get(arch, "embed_tokens")
    n_full = shapes.shape_from_config(config, arch).n_params
    for name, args in _methods(emb):
        if set(args.get("targets", [])) - {emb}:
            args = {**args, "targets": [emb]}  # the Llama module names are not everyone's
        key = (arch, args.get("peft_type", name)) if "targets" not in args else None
        try:
            n, nt, _ = meta.meta_counts(config, get_method(name, **args))
        except StRecipeError as exc:
            if name == "bias" and "no bias parameters" in str(exc):
                continue
            assert key in _EXPECTED_REFUSALS, f"{arch} {name}{args}: {exc}"
            assert _EXPECTED_REFUSALS[key] in str(exc)
            continue
        assert key not in _EXPECTED_REFUSALS
        assert 0 <= nt <= n and n >= n_full
        if name in ("full", "freeze", "bias"):
            assert n == n_full


def test_meta_counts_are_cached() -> None:
    method = get_method("lora", r=4)
    first = meta.meta_counts(TINY["qwen2"], method)
    assert meta.meta_counts(dict(TINY["qwen2"]), get_method("lora", r=4)) is first
    assert meta.meta_counts(TINY["qwen2"], get_method("lora", r=8)) is not first
