"""Shapes and exact parameter counts from config.json alone: formulas, meta-device builds, methods, LRs."""

from __future__ import annotations

import copy
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import pytest

from st_recipe import shapes
from st_recipe.catalog import CATALOG
from st_recipe.errors import StRecipeError
from st_recipe.methods import get_method

_TINY = {
    "vocab_size": 1000,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
}
_GQA = dict(_TINY, num_key_value_heads=2)

# Tiny configs of every architecture with a formula, plus the structural switches each one has.
TINY: dict[str, dict[str, Any]] = {
    "gpt_neox": dict(_TINY, model_type="gpt_neox"),
    "gpt_neox-nobias": dict(_TINY, model_type="gpt_neox", attention_bias=False),
    "llama": dict(_GQA, model_type="llama"),
    "llama-biases": dict(_GQA, model_type="llama", attention_bias=True, mlp_bias=True, head_dim=32),
    "mistral": dict(_GQA, model_type="mistral"),
    "qwen2": dict(_GQA, model_type="qwen2"),
    "qwen3": dict(_GQA, model_type="qwen3", head_dim=16),
    "qwen3-bias": dict(_GQA, model_type="qwen3", head_dim=24, attention_bias=True),
    "gemma": dict(_GQA, model_type="gemma", head_dim=16),
    "gemma2": dict(_GQA, model_type="gemma2", head_dim=16),
    "gemma3_text": dict(_GQA, model_type="gemma3_text", head_dim=16),
    "gemma3-nested": {
        "model_type": "gemma3",
        "text_config": dict(_GQA, model_type="gemma3_text", head_dim=16),
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "image_size": 28,
            "patch_size": 14,
        },
    },
    "phi3": dict(_GQA, model_type="phi3", pad_token_id=0, bos_token_id=1, eos_token_id=2),
    "phi3-mha-tied": dict(
        _TINY, model_type="phi3", pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True
    ),
    "gpt2": {
        "model_type": "gpt2",
        "vocab_size": 1000,
        "n_embd": 64,
        "n_layer": 2,
        "n_head": 4,
        "n_positions": 128,
        "bos_token_id": 0,
        "eos_token_id": 0,
    },
    "gpt2-inner-untied": {
        "model_type": "gpt2",
        "vocab_size": 1000,
        "n_embd": 64,
        "n_layer": 2,
        "n_head": 4,
        "n_inner": 96,
        "n_positions": 64,
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 0,
    },
    "opt": {
        "model_type": "opt",
        "vocab_size": 1000,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "ffn_dim": 128,
        "max_position_embeddings": 128,
    },
    "opt-projected-postln": {
        "model_type": "opt",
        "vocab_size": 1000,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "ffn_dim": 128,
        "word_embed_proj_dim": 32,
        "do_layer_norm_before": False,
    },
    "opt-nobias-noaffine": {
        "model_type": "opt",
        "vocab_size": 1000,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "ffn_dim": 96,
        "enable_bias": False,
        "layer_norm_elementwise_affine": False,
        "tie_word_embeddings": False,
    },
}

# Full-size configs, keys as in the published config.json files.
FULL: dict[str, dict[str, Any]] = {
    "pythia-410m": shapes.catalogue_config(CATALOG["pythia-410m"]),
    "SmolLM2-135M": {
        "model_type": "llama",
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "tie_word_embeddings": True,
        "max_position_embeddings": 8192,
        "bos_token_id": 0,
        "eos_token_id": 0,
    },
    "Qwen2.5-0.5B": {
        "model_type": "qwen2",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
        "max_position_embeddings": 32768,
    },
    "Qwen3-0.6B": {
        "model_type": "qwen3",
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
        "max_position_embeddings": 40960,
        "attention_bias": False,
    },
    "Llama-3.2-1B": {
        "model_type": "llama",
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "vocab_size": 128256,
        "tie_word_embeddings": True,
        "max_position_embeddings": 131072,
        "attention_bias": False,
        "mlp_bias": False,
    },
    "Llama-2-7b": {
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
        "tie_word_embeddings": False,
        "max_position_embeddings": 4096,
    },
    "Mistral-7B-v0.1": {
        "model_type": "mistral",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
        "tie_word_embeddings": False,
        "max_position_embeddings": 32768,
    },
    "gemma-2b": {
        "model_type": "gemma",
        "hidden_size": 2048,
        "intermediate_size": 16384,
        "num_hidden_layers": 18,
        "num_attention_heads": 8,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "vocab_size": 256000,
        "max_position_embeddings": 8192,
    },
    "gemma-2-2b": {
        "model_type": "gemma2",
        "hidden_size": 2304,
        "intermediate_size": 9216,
        "num_hidden_layers": 26,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "vocab_size": 256000,
        "tie_word_embeddings": True,
        "max_position_embeddings": 8192,
    },
    "gemma-3-1b": {
        "model_type": "gemma3_text",
        "hidden_size": 1152,
        "intermediate_size": 6912,
        "num_hidden_layers": 26,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "vocab_size": 262144,
        "max_position_embeddings": 32768,
    },
    # Gemma 3 4B: a multimodal wrapper whose text_config is saved as a diff against Gemma3TextConfig.
    "gemma-3-4b": {
        "model_type": "gemma3",
        "text_config": {
            "model_type": "gemma3_text",
            "hidden_size": 2560,
            "intermediate_size": 10240,
            "num_hidden_layers": 34,
            "sliding_window": 1024,
            "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
        },
        "vision_config": {"model_type": "siglip_vision_model"},
    },
    "Phi-3-mini-4k": {
        "model_type": "phi3",
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32064,
        "tie_word_embeddings": False,
        "max_position_embeddings": 4096,
        "pad_token_id": 32000,
        "bos_token_id": 1,
        "eos_token_id": 32000,
    },
    "gpt2": {
        "model_type": "gpt2",
        "n_embd": 768,
        "n_layer": 12,
        "n_head": 12,
        "n_inner": None,
        "n_positions": 1024,
        "vocab_size": 50257,
    },
    "opt-125m": {
        "model_type": "opt",
        "hidden_size": 768,
        "ffn_dim": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "vocab_size": 50272,
        "max_position_embeddings": 2048,
        "word_embed_proj_dim": 768,
        "do_layer_norm_before": True,
        "pad_token_id": 1,
    },
    "opt-350m": {
        "model_type": "opt",
        "hidden_size": 1024,
        "ffn_dim": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "vocab_size": 50272,
        "max_position_embeddings": 2048,
        "word_embed_proj_dim": 512,
        "do_layer_norm_before": False,
        "pad_token_id": 1,
    },
}

# Published parameter counts (model cards / papers): total of the causal LM, and N where one is given.
PUBLISHED_TOTAL = {
    "pythia-410m": 405_334_016,  # Pythia paper, Table 1
    "gpt2": 124_439_808,
    "opt-125m": 125_239_296,
    "Llama-3.2-1B": 1_235_814_400,
    "Mistral-7B-v0.1": 7_241_732_096,
    "Phi-3-mini-4k": 3_821_079_552,
}
PUBLISHED_N_BILLIONS = {"Qwen2.5-0.5B": 0.36, "Qwen3-0.6B": 0.44}  # "non-embedding" lines of the model cards
PUBLISHED_N = {"pythia-410m": 302_311_424}  # Pythia paper, non-embedding column


def _meta_base_counts(config: dict[str, Any]) -> tuple[int, int]:
    """(N, embedding parameters) of the meta-built base model, counted the way methods count."""
    from st_recipe.methods.base import count_params

    report = count_params(shapes.meta_model(config), "count")
    return report.n_params, report.n_params_all - report.n_params


def _meta_causal_total(config: dict[str, Any]) -> int:
    """Every parameter of the causal LM (head included, tied weights once), built on meta."""
    import torch
    from transformers import AutoModelForCausalLM

    text, _ = shapes._text_config(config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(shapes._hf_config(text))
    return sum(p.numel() for p in model.parameters())


def _check_formula(config: dict[str, Any], name: str) -> shapes.ModelShape:
    shape = shapes.shape_from_config(config, name)
    n, emb = _meta_base_counts(config)
    assert shape.n_params == n, f"{name}: formula N {shape.n_params:,} != meta {n:,}"
    assert shape.n_input_embedding_params == emb
    assert shape.n_params_total == _meta_causal_total(config)
    return shape


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_formula_equals_meta_count(name: str) -> None:
    shape = _check_formula(TINY[name], name)
    assert shape.n_params > 0 and shape.num_layers == 2


@pytest.mark.parametrize("name", sorted(FULL))
def test_full_size_formula_equals_meta_count(name: str) -> None:
    start = time.perf_counter()
    shape = _check_formula(FULL[name], name)
    if name in PUBLISHED_TOTAL:
        assert shape.n_params_total == PUBLISHED_TOTAL[name]
    if name in PUBLISHED_N:
        assert shape.n_params == PUBLISHED_N[name]
    if name in PUBLISHED_N_BILLIONS:
        assert round(shape.n_params / 1e9, 2) == PUBLISHED_N_BILLIONS[name]
    assert time.perf_counter() - start < 10


def test_full_size_shape_fields() -> None:
    smol = shapes.shape_from_config(FULL["SmolLM2-135M"], "HuggingFaceTB/SmolLM2-135M")
    assert (smol.num_heads, smol.num_kv_heads, smol.head_dim, smol.attention_width) == (9, 3, 64, 576)
    assert smol.gated_mlp and smol.tie_word_embeddings and smol.n_embedding_params == 49152 * 576
    qwen = shapes.shape_from_config(FULL["Qwen2.5-0.5B"], "Qwen/Qwen2.5-0.5B")
    assert (qwen.num_kv_heads, qwen.head_dim, qwen.max_positions, qwen.pretrain_lr) == (2, 64, 32768, None)
    llama = shapes.shape_from_config(FULL["Llama-3.2-1B"], "meta-llama/Llama-3.2-1B")
    assert (llama.head_dim, llama.attention_width, llama.hidden_size) == (64, 2048, 2048)
    gemma = shapes.shape_from_config(FULL["gemma-3-4b"], "google/gemma-3-4b-pt")
    assert (gemma.model_type, gemma.num_heads, gemma.num_kv_heads, gemma.head_dim, gemma.vocab_size) == (
        "gemma3_text",
        8,
        4,
        256,
        262208,
    )
    assert gemma.attention_width == 2048 != gemma.hidden_size
    gpt2 = shapes.shape_from_config(FULL["gpt2"], "gpt2")
    assert (gpt2.intermediate_size, gpt2.max_positions, gpt2.gated_mlp, gpt2.rotary_pct) == (3072, 1024, False, 0.0)
    assert gpt2.n_input_embedding_params == 50257 * 768 + 1024 * 768  # wte + wpe: positions are embeddings
    opt = shapes.shape_from_config(FULL["opt-350m"], "facebook/opt-350m")
    assert opt.n_input_embedding_params == 50272 * 512 + 2050 * 1024
    pythia = shapes.shape_from_config(FULL["pythia-410m"], "pythia-410m")
    assert (pythia.rotary_pct, pythia.family, pythia.pretrain_lr) == (0.25, "pythia", 3e-4)
    json.dumps(pythia.to_dict())


@pytest.mark.parametrize("model_type", shapes.ARCHITECTURES)
def test_nested_defaults_follow_transformers(model_type: str) -> None:
    """A nested text config omits keys at their class defaults: the formulas must fill in the same ones."""
    from transformers import AutoConfig

    config = {"model_type": "some_wrapper", "text_config": {"model_type": model_type}}
    shape = shapes.shape_from_config(config, model_type)
    hf = AutoConfig.for_model(model_type)
    assert (shape.hidden_size, shape.num_layers, shape.num_heads, shape.vocab_size) == (
        hf.hidden_size,
        hf.num_hidden_layers,
        hf.num_attention_heads,
        hf.vocab_size,
    )
    assert shape.tie_word_embeddings == bool(hf.tie_word_embeddings)
    assert shape.num_kv_heads == (getattr(hf, "num_key_value_heads", None) or hf.num_attention_heads)
    assert shape.n_params == _meta_base_counts(config)[0]


def test_meta_build_allocates_no_memory() -> None:
    """A 7B model and its LoRA adapters live on the meta device: no parameter has storage."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = FULL["Mistral-7B-v0.1"]
    model = shapes.meta_model(config)
    tensors = list(model.parameters()) + list(model.buffers())
    assert tensors and all(t.device.type == "meta" for t in tensors)
    assert sum(p.numel() for p in model.parameters()) > 7e9
    encoder = shapes._Encoder(shapes.meta_model(config))
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
    config = shapes.read_config(str(tiny_folders[arch]))
    assert config["model_type"] == arch
    checked = 0
    for name, args in _methods("embed_tokens"):
        try:
            real = get_method(name, **args).apply(copy.deepcopy(real_encoders[arch]))
        except StRecipeError as exc:
            # Only Llama lacks biases; the meta build must refuse in the same words.
            assert (arch, name) == ("llama", "bias")
            with pytest.raises(StRecipeError, match="no bias parameters"):
                shapes.meta_counts(config, get_method(name, **args))
            assert "no bias parameters" in str(exc)
            continue
        n, nt, report = shapes.meta_counts(config, get_method(name, **args))
        assert (n, nt) == (real.n_params, real.n_trainable), f"{arch} {name}{args}"
        assert report == real
        checked += 1
    assert checked == (13 if arch == "llama" else 14)


def test_meta_counts_shape_is_model_shape(tiny_folders: dict[str, Path]) -> None:
    config = shapes.read_config(str(tiny_folders["qwen2"]))
    shape = shapes.shape_from_config(config, str(tiny_folders["qwen2"]))
    n, nt, _ = shapes.meta_counts(config, get_method("full"))
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
            n, nt, _ = shapes.meta_counts(config, get_method(name, **args))
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
    first = shapes.meta_counts(TINY["qwen2"], method)
    assert shapes.meta_counts(dict(TINY["qwen2"]), get_method("lora", r=4)) is first
    assert shapes.meta_counts(TINY["qwen2"], get_method("lora", r=8)) is not first


# ------------------------------------------------------------------------------------------- reading


def test_read_config_local_folder_file_and_catalogue(tiny_neox_dir: Path) -> None:
    from_folder = shapes.read_config(str(tiny_neox_dir))
    assert from_folder["model_type"] == "gpt_neox" and from_folder["hidden_size"] == 32
    assert shapes.read_config(str(tiny_neox_dir / "config.json")) == from_folder
    spec = CATALOG["pythia-160m"]
    for name in ("pythia-160m", "EleutherAI/pythia-160m", "random:pythia-160m"):
        assert shapes.read_config(name) == shapes.catalogue_config(spec)
    # The synthesised config is the catalogue's own transformers config.
    ours = shapes._hf_config(shapes.catalogue_config(spec)).to_dict()
    theirs = spec.hf_config().to_dict()
    for key in ("_name_or_path", "architectures", "transformers_version"):
        ours.pop(key, None), theirs.pop(key, None)
    assert ours == theirs


def test_catalogue_shapes_match_specs() -> None:
    for spec in CATALOG.values():
        shape = shapes.shape_for(spec.name)
        assert (shape.n_params, shape.n_embedding_params, shape.pretrain_lr) == (
            spec.n_params,
            spec.n_embedding_params,
            spec.pretrain_lr,
        )
        assert shape.finetune_lr == pytest.approx(spec.finetune_lr)
        assert (shape.hidden_size, shape.num_layers, shape.num_heads, shape.intermediate_size) == (
            spec.hidden_size,
            spec.num_layers,
            spec.num_heads,
            spec.intermediate_size,
        )


def test_shape_stands_in_for_a_spec_in_memory_estimates() -> None:
    from st_recipe.memory import estimate_memory

    spec, shape = CATALOG["pythia-70m"], shapes.shape_for("pythia-70m")
    for method in (get_method("full"), get_method("lora"), get_method("freeze", blocks=2)):
        kwargs = {"batch_size": 8, "max_seq_length": 64}
        assert estimate_memory(shape, method, **kwargs) == estimate_memory(spec, method, **kwargs)


def test_read_config_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(StRecipeError, match="has no config.json"):
        shapes.read_config(str(tmp_path))
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(StRecipeError, match="not a JSON object"):
        shapes.read_config(str(tmp_path))


def test_hub_id_offline_fails_fast_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(StRecipeError) as info:
        shapes.read_config("st-recipe-tests/surely-not-cached-model")
    assert time.perf_counter() - start < 2
    message = str(info.value)
    assert "\n" not in message and "local folder" in message and "HF_HUB_OFFLINE" in message


def test_hub_id_unreachable_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    start = time.perf_counter()
    with pytest.raises(StRecipeError, match="unreachable.*local folder"):
        shapes.read_config("st-recipe-tests/surely-not-cached-model")
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
    assert shapes.read_config("org/cached-model") == FULL["SmolLM2-135M"]
    assert not any(p.suffix == ".safetensors" for p in tmp_path.rglob("*"))


# ------------------------------------------------------------------------------- unknown architectures


def test_unknown_architecture_names_missing_keys() -> None:
    with pytest.raises(StRecipeError) as info:
        shapes.shape_from_config({"model_type": "made_up", "hidden_size": 64}, "x")
    message = str(info.value)
    assert "made_up" in message and "\n" not in message
    for key in ("num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"):
        assert key in message
    assert "hidden size" not in message  # present, so not reported


def test_known_architecture_missing_keys_and_no_model_type() -> None:
    with pytest.raises(StRecipeError, match=r"^llama config lacks num_hidden_layers, intermediate_size$"):
        shapes.shape_from_config(
            {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10}, "x"
        )
    with pytest.raises(StRecipeError, match="no model_type"):
        shapes.shape_from_config({"hidden_size": 64}, "x")
    with pytest.raises(StRecipeError, match="does not know model_type"):
        shapes.shape_from_config(dict(_TINY, model_type="made_up"), "x")


def test_other_architectures_are_counted_exactly_on_meta() -> None:
    """OLMo has no formula here: N comes from the meta build (non-parametric norms: projections only)."""
    config = {
        "model_type": "olmo",
        "hidden_size": 2048,
        "num_hidden_layers": 16,
        "num_attention_heads": 16,
        "intermediate_size": 8192,
        "vocab_size": 50304,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": True,
        "pad_token_id": 1,
        "eos_token_id": 50279,
    }
    shape = shapes.shape_from_config(config, "allenai/OLMo-1B-hf")
    assert shape.n_params == 16 * (4 * 2048 * 2048 + 3 * 2048 * 8192)
    assert shape.gated_mlp and shape.max_positions == 2048
    assert (shape.pretrain_lr, shape.family) == (4e-4, "olmo")


# ---------------------------------------------------------------------------------- pretraining LRs


def test_pretrain_lr_table() -> None:
    llama2 = FULL["Llama-2-7b"]
    for name in ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-chat-hf", "/models/llama-2-7b"):
        lr, source = shapes.pretrain_lr_for(llama2, name)
        assert lr == 3e-4 and "Llama 2" in source
    assert shapes.pretrain_lr_for(llama2, "meta-llama/Llama-2-70b-hf") is None  # name and shape disagree
    assert shapes.pretrain_lr_for(llama2, "my-finetune") is None
    assert shapes.pretrain_lr_for(dict(llama2, _name_or_path="huggyllama/llama-7b"), "/tmp/x")[0] == 3e-4
    assert shapes.pretrain_lr_for(FULL["opt-125m"], "facebook/opt-125m") == (
        6e-4,
        shapes.PRETRAIN_LRS["opt-125m"].source,
    )
    assert shapes.pretrain_lr_for(FULL["opt-350m"], "facebook/opt-350m")[0] == 3e-4
    assert shapes.pretrain_lr_for(FULL["opt-350m"], "facebook/opt-125m") is None
    assert shapes.pretrain_lr_for(FULL["pythia-410m"], "EleutherAI/pythia-410m-deduped")[0] == 3e-4
    assert shapes.pretrain_lr_for(FULL["Qwen2.5-0.5B"], "Qwen/Qwen2.5-0.5B") is None
    assert shapes.pretrain_lr_for(FULL["gpt2"], "gpt2") is None
    for entry in shapes.PRETRAIN_LRS.values():
        assert 0 < entry.lr < 1e-2 and entry.source and entry.family
    shape = shapes.shape_from_config(llama2, "meta-llama/Llama-2-7b-hf")
    assert (shape.family, shape.pretrain_lr, shape.finetune_lr) == ("llama-2", 3e-4, pytest.approx(3e-5))


def test_import_is_torch_free() -> None:
    import subprocess
    import sys

    code = "import sys, st_recipe.shapes; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert out.stdout.split() == ["False", "False"]
