"""Architecture-aware default target modules for methods that adapt layers (LoRA, Propulsion)."""

from __future__ import annotations

from typing import Any

_LLAMA_LIKE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# The paper adapts the attention, output and MLP projections and the input embedding.
LINEAR_TARGETS: dict[str, tuple[str, ...]] = {
    "gpt_neox": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    **{t: _LLAMA_LIKE for t in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "olmo", "olmo2")},
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
}


def input_embedding_name(model: Any) -> str | None:
    """Dotted name of the model's input embedding module, if it has one."""
    try:
        emb = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    for name, mod in model.named_modules():
        if mod is emb and name:
            return name
    return None


def default_targets(model: Any, *, include_embedding: bool = True) -> tuple[str, ...]:
    """Target names for a model: known names by architecture, else every linear layer, plus the input embedding."""
    import torch

    model_type = getattr(getattr(model, "config", None), "model_type", "")
    linear = LINEAR_TARGETS.get(model_type)
    if linear is None:
        found = {
            name.rsplit(".", 1)[-1]
            for name, mod in model.named_modules()
            if name and isinstance(mod, torch.nn.Linear)
        }
        linear = tuple(sorted(found))
    targets = tuple(linear)
    emb = input_embedding_name(model) if include_embedding else None
    if emb:
        targets += (emb.rsplit(".", 1)[-1],)
    return targets
