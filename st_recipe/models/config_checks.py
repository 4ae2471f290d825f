"""Checks of a parsed ``config.json`` that need nothing else of the package: the decoder's own config inside a
multimodal wrapper, and shape values that must be positive integers (a zero would divide by zero later)."""

from __future__ import annotations

from typing import Any

from st_recipe.errors import StRecipeError

# Multimodal wrappers whose text decoder is what a sentence encoder runs.
_TEXT_MODEL_TYPE = {"gemma3": "gemma3_text"}


def text_config(config: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The decoder's own config and whether it was nested (then saved as a diff against defaults)."""
    if not isinstance(config, dict):
        raise StRecipeError(f"a model config must be a dict (the parsed config.json), not {type(config).__name__}")
    sub = config.get("text_config")
    if isinstance(sub, dict):
        sub = dict(sub)
        outer = config.get("model_type")
        sub.setdefault("model_type", _TEXT_MODEL_TYPE.get(outer, outer))
        # The wrapper carries the tie flag for the LM head it owns.
        if "tie_word_embeddings" in config and "tie_word_embeddings" not in sub:
            sub["tie_word_embeddings"] = config["tie_word_embeddings"]
        return sub, True
    return config, False


# Shape values that must be positive integers when a config sets them (a zero would divide by zero later).
_POSITIVE_KEYS = ("hidden_size", "n_embd", "d_model", "num_hidden_layers", "n_layer", "num_layers",
                  "num_attention_heads", "n_head", "num_heads", "num_key_value_heads", "intermediate_size", "ffn_dim",
                  "n_inner", "ffn_hidden_size", "d_ff", "vocab_size", "head_dim", "max_position_embeddings",
                  "n_positions")


def check_shape_values(config: dict[str, Any], where: str = "the model config") -> None:
    """Raise a one-line error unless every shape value the config sets is a positive integer."""
    for key in _POSITIVE_KEYS:
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise StRecipeError(f"{where} sets {key} to {value!r}; it must be a positive integer")
