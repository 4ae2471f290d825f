"""A decoder's ``config.json``: finding and reading it, and filling in what transformers leaves out.

:func:`read_config` finds the config (a local folder or file, a catalogue name, ``random:<name>`` or the one
file from the Hub, never any weights); :func:`catalogue_config` makes a catalogue entry's config without a
download. :func:`text_config` picks the decoder out of a multimodal wrapper and :func:`resolve_config` fills in
transformers' class defaults (:data:`DEFAULTS`) for the architectures with closed-form counts.

Nothing here imports torch or transformers.
"""

from __future__ import annotations

import json
import os
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.models.config_checks import check_shape_values, text_config  # noqa: F401 -- re-exported

# A config.json written by transformers holds every model-specific key at the top level, but nested
# sub-configs (Gemma 3's ``text_config``) are saved as a diff against the class defaults. These are the
# transformers 5 config-class defaults for the keys the formulas read (a test compares them with
# transformers), used for what a nested config omits and for structural options at any level.
DEFAULTS: dict[str, dict[str, Any]] = {
    "gpt_neox": dict(vocab_size=50432, hidden_size=6144, num_hidden_layers=44, num_attention_heads=64,
                     intermediate_size=24576, attention_bias=True, tie_word_embeddings=False,
                     max_position_embeddings=2048),
    "llama": dict(vocab_size=32000, hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=None, head_dim=None, intermediate_size=11008, attention_bias=False,
                  mlp_bias=False, tie_word_embeddings=False, max_position_embeddings=2048),
    "mistral": dict(vocab_size=32000, hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                    num_key_value_heads=8, head_dim=None, intermediate_size=14336, tie_word_embeddings=False,
                    max_position_embeddings=131072),
    "qwen2": dict(vocab_size=151936, hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=32, intermediate_size=22016, tie_word_embeddings=False,
                  max_position_embeddings=32768),
    "qwen3": dict(vocab_size=151936, hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=32, head_dim=128, intermediate_size=22016, attention_bias=False,
                  tie_word_embeddings=False, max_position_embeddings=32768),
    "gemma": dict(vocab_size=256000, hidden_size=3072, num_hidden_layers=28, num_attention_heads=16,
                  num_key_value_heads=16, head_dim=256, intermediate_size=24576, attention_bias=False,
                  tie_word_embeddings=True, max_position_embeddings=8192),
    "gemma2": dict(vocab_size=256000, hidden_size=2304, num_hidden_layers=26, num_attention_heads=8,
                   num_key_value_heads=4, head_dim=256, intermediate_size=9216, attention_bias=False,
                   tie_word_embeddings=True, max_position_embeddings=8192),
    "gemma3_text": dict(vocab_size=262208, hidden_size=2304, num_hidden_layers=26, num_attention_heads=8,
                        num_key_value_heads=4, head_dim=256, intermediate_size=9216, attention_bias=False,
                        tie_word_embeddings=True, max_position_embeddings=131072),
    "phi3": dict(vocab_size=32064, hidden_size=3072, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=None, head_dim=None, intermediate_size=8192, tie_word_embeddings=False,
                 max_position_embeddings=4096),
    "gpt2": dict(vocab_size=50257, n_embd=768, n_layer=12, n_head=12, n_inner=None, n_positions=1024,
                 tie_word_embeddings=True, add_cross_attention=False),
    "opt": dict(vocab_size=50272, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, ffn_dim=3072,
                word_embed_proj_dim=None, enable_bias=True, layer_norm_elementwise_affine=True,
                do_layer_norm_before=True, _remove_final_layer_norm=False, tie_word_embeddings=True,
                max_position_embeddings=2048),
}

# The shape keys a top-level config must carry (GPT-2's n_inner may be absent or null: 4 x n_embd).
_CORE_KEYS: dict[str, tuple[str, ...]] = {
    **{t: ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
       for t in ("gpt_neox", "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3")},
    "gpt2": ("n_embd", "n_layer", "n_head", "vocab_size"),
    "opt": ("hidden_size", "num_hidden_layers", "num_attention_heads", "ffn_dim", "vocab_size"),
}




# --------------------------------------------------------------------------------------------- reading


def read_config(model: str) -> dict[str, Any]:
    """The ``config.json`` of a MODEL (a local folder, a catalogue name, ``random:<name>``, a Hub id) or that file."""
    from st_recipe.models.args import locate_model

    given = os.path.expanduser(model.strip()) if isinstance(model, str) else ""
    if given.endswith(".json") and os.path.isfile(given):
        return _load_json(given, model)  # the config file itself, which is not a MODEL argument
    ref = locate_model(model)  # the owner of "what is this MODEL?"; it reads no files of a folder
    if ref.kind == "local":
        path = os.path.join(given, "config.json")
        if not os.path.isfile(path):
            raise StRecipeError(f"model folder {ref.raw!r} has no config.json")
        return _load_json(path, given)
    if ref.spec is not None:
        return catalogue_config(ref.spec)
    return _read_hub_config(ref.raw)


def catalogue_config(spec: Any) -> dict[str, Any]:
    """The config.json of a catalogue entry (the published Pythia keys), made without any download."""
    return {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "intermediate_size": spec.intermediate_size,
        "hidden_act": "gelu",
        "rotary_pct": spec.rotary_pct,
        "rotary_emb_base": 10000,
        "max_position_embeddings": spec.max_positions,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-5,
        "use_parallel_residual": True,
        "attention_bias": True,
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "_name_or_path": spec.hub_id,
    }


def _load_json(path: str, label: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError, RecursionError) as exc:
        raise StRecipeError(f"cannot read the config of {label!r} ({path}): {exc}") from exc
    if not isinstance(data, dict):
        raise StRecipeError(f"the config of {label!r} ({path}) is not a JSON object")
    return data


def _read_hub_config(repo_id: str) -> dict[str, Any]:
    """config.json from the local Hugging Face cache, else downloaded alone (never any weights)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(repo_id, "config.json")
    except (ValueError, OSError):
        cached = None
    if isinstance(cached, str):
        return _load_json(cached, repo_id)
    from st_recipe.hub import access as hub_access

    reason = hub_access.unavailable_reason()
    if reason is not None:
        raise StRecipeError(
            f"cannot read the config of {repo_id!r}: it is not in the local Hugging Face cache and {reason}; "
            f"pass a local folder holding its config.json instead"
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
    )

    try:
        path = hf_hub_download(repo_id, "config.json")
    except GatedRepoError:
        raise StRecipeError(f"{repo_id!r} is a gated Hub repository: accept its terms and log in "
                            f"(hf auth login), or pass a local folder holding its config.json") from None
    except RepositoryNotFoundError:
        raise StRecipeError(f"no Hub model {repo_id!r} (or it is private); check the id") from None
    except EntryNotFoundError:
        raise StRecipeError(f"Hub repository {repo_id!r} has no config.json: not a transformers model") from None
    except (HfHubHTTPError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StRecipeError(f"cannot download the config of {repo_id!r}: {first}; "
                            f"pass a local folder holding its config.json instead") from None
    return _load_json(path, repo_id)


# ------------------------------------------------------------------------------------------- normalising


def model_type_of(config: dict[str, Any]) -> str:
    """The config's ``model_type``, or a one-line error when it has none."""
    model_type = config.get("model_type")
    if not model_type or not isinstance(model_type, str):
        raise StRecipeError(f"the config has no model_type (keys: {', '.join(sorted(config)[:12])}); "
                            "is it a transformers config.json?")
    return model_type


def resolve_config(config: dict[str, Any], nested: bool) -> dict[str, Any]:
    """The config with transformers' defaults filled in, or a one-line error naming missing shape keys."""
    model_type = model_type_of(config)
    if not nested:
        missing = [k for k in _CORE_KEYS[model_type] if config.get(k) is None]
        if missing:
            raise StRecipeError(f"{model_type} config lacks {', '.join(missing)}")
    # An explicit null stays null: transformers then derives the value (kv heads = heads, head_dim = h / heads).
    return {**DEFAULTS[model_type], **config}
