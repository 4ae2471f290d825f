"""Shapes and exact parameter counts from config.json alone: the closed forms against meta-device builds."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from st_recipe.errors import StRecipeError
from st_recipe.methods import get_method
from st_recipe.models import config as model_config
from st_recipe.models import meta, shapes
from st_recipe.models.catalog import CATALOG
from tests.model_configs import FULL, TINY, TINY_BASE

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

    report = count_params(meta.meta_model(config), "count")
    return report.n_params, report.n_params_all - report.n_params


def _meta_causal_total(config: dict[str, Any]) -> int:
    """Every parameter of the causal LM (head included, tied weights once), built on meta."""
    import torch
    from transformers import AutoModelForCausalLM

    text, _ = model_config.text_config(config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(meta.build_hf_config(text))
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
    from st_recipe.costing.memory import estimate_memory

    spec, shape = CATALOG["pythia-70m"], shapes.shape_for("pythia-70m")
    for method in (get_method("full"), get_method("lora"), get_method("freeze", blocks=2)):
        kwargs = {"batch_size": 8, "max_seq_length": 64}
        assert estimate_memory(shape, method, **kwargs) == estimate_memory(spec, method, **kwargs)


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
        shapes.shape_from_config(dict(TINY_BASE, model_type="made_up"), "x")


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


def test_import_is_torch_free() -> None:
    import subprocess
    import sys

    code = "import sys, st_recipe.models.shapes; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert out.stdout.split() == ["False", "False"]
