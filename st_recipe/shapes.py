"""Shapes and exact parameter counts of any Hugging Face decoder from its ``config.json``, without weights.

``read_config`` finds the config (a local folder, a catalogue name, ``random:<name>`` or one file from the
Hub), ``shape_from_config`` turns it into a :class:`ModelShape` whose closed-form non-embedding count N is
exact for the architectures in :data:`ARCHITECTURES`, and ``meta_counts`` builds the same base model on
PyTorch's ``meta`` device (no memory behind any tensor) to report (N, N_t) exactly as ``method.apply``
does on a real encoder. The tests keep the formulas and the meta counts equal.

Counting follows the paper's convention (see ``methods/base.py``): N excludes every parameter whose name
contains "emb" or that an embedding module owns: token embeddings, learned position embeddings (GPT-2,
OPT) and the LM head (absent from the base model the encoder uses; tied heads add nothing anyway).

Nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from st_recipe.errors import StRecipeError

if TYPE_CHECKING:
    from st_recipe.methods.base import ParamReport

# A config.json written by transformers holds every model-specific key at the top level, but nested
# sub-configs (Gemma 3's ``text_config``) are saved as a diff against the class defaults. These are the
# transformers 5 config-class defaults for the keys the formulas read (a test compares them with
# transformers), used for what a nested config omits and for structural options at any level.
_DEFAULTS: dict[str, dict[str, Any]] = {
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


@dataclass(frozen=True)
class _Layout:
    """What a Llama-style block holds beyond q/k/v/o projections, a gated MLP and RMSNorm weights."""

    qkv_bias: bool | str = False  # True, or the config key that switches q/k/v/o biases on
    mlp_bias: str | None = None  # config key switching gate/up/down biases on
    norms: int = 2  # RMSNorms of width h per block
    qk_norm: bool = False  # per-head RMSNorms on queries and keys (head_dim each)


_LLAMA_LIKE: dict[str, _Layout] = {
    "llama": _Layout(qkv_bias="attention_bias", mlp_bias="mlp_bias"),
    "mistral": _Layout(),
    "qwen2": _Layout(qkv_bias=True),  # q/k/v biases always, none on o_proj
    "qwen3": _Layout(qkv_bias="attention_bias", qk_norm=True),
    "gemma": _Layout(qkv_bias="attention_bias"),
    "gemma2": _Layout(qkv_bias="attention_bias", norms=4),  # pre/post norms around attention and MLP
    "gemma3_text": _Layout(qkv_bias="attention_bias", norms=4, qk_norm=True),
    "phi3": _Layout(),  # fused qkv_proj and gate_up_proj hold the same counts as separate ones
}

ARCHITECTURES: tuple[str, ...] = tuple(_DEFAULTS)

# Multimodal wrappers whose text decoder is what a sentence encoder runs.
_TEXT_MODEL_TYPE = {"gemma3": "gemma3_text"}


@dataclass(frozen=True)
class ModelShape:
    """A decoder's shape and exact counts from its config; usable wherever a catalogue ``ModelSpec`` is.

    ``n_params`` is the paper's N (non-embedding parameters of the base model the encoder runs);
    ``n_embedding_params`` counts the causal LM's embeddings (input, learned positions, untied head) as
    ``ModelSpec`` does, and ``n_input_embedding_params`` only those the encoder itself holds.
    ``pretrain_lr`` is None when no published rate is known for this model.
    """

    name: str
    family: str
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    gated_mlp: bool
    n_params: int
    n_embedding_params: int
    n_input_embedding_params: int
    max_positions: int
    rotary_pct: float = 0.0
    pretrain_lr: float | None = None
    pretrain_lr_source: str | None = None
    hub_id: str = ""
    license: str | None = None
    config_json: str = field(default="", repr=False, compare=False)

    @property
    def attention_width(self) -> int:
        """Width of the query (and attention output) projection: heads x head_dim."""
        return self.num_heads * self.head_dim

    @property
    def finetune_lr(self) -> float | None:
        """The paper's fine-tuning LR (pretraining LR / 10), or None when the pretraining LR is unknown."""
        return None if self.pretrain_lr is None else self.pretrain_lr / 10

    @property
    def n_params_total(self) -> int:
        """Every parameter of the causal LM, embeddings included."""
        return self.n_params + self.n_embedding_params

    def config(self) -> dict[str, Any]:
        """The config dict this shape was read from."""
        return json.loads(self.config_json) if self.config_json else {}

    def hf_config(self) -> Any:
        """The transformers config object of the (text) decoder."""
        return _hf_config(_text_config(self.config())[0])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the derived values."""
        out = asdict(self)
        out.pop("config_json")
        out.update(attention_width=self.attention_width, finetune_lr=self.finetune_lr,
                   n_params_total=self.n_params_total)
        return out


# --------------------------------------------------------------------------------------------- reading


def read_config(model: str) -> dict[str, Any]:
    """The ``config.json`` of a local folder (or file), a catalogue name, ``random:<name>`` or a Hub id."""
    from st_recipe.catalog import RANDOM_PREFIX, parse_model_spec

    folder = os.path.expanduser(model.strip()) if isinstance(model, str) else ""
    if folder.endswith(".json") and os.path.isfile(folder):
        return _load_json(folder, model)
    if folder and not folder.startswith(RANDOM_PREFIX) and os.path.isdir(folder):
        # Read here rather than through parse_model_spec, which also parses the config to match the catalogue.
        path = os.path.join(folder, "config.json")
        if not os.path.isfile(path):
            raise StRecipeError(f"model folder {os.path.abspath(folder)!r} has no config.json")
        return _load_json(path, folder)
    ref = parse_model_spec(model)
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
    except (OSError, ValueError) as exc:
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
    from st_recipe import hub_access

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


# ------------------------------------------------------------------------------------------ formulas


def _text_config(config: dict[str, Any]) -> tuple[dict[str, Any], bool]:
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


def _model_type(config: dict[str, Any]) -> str:
    model_type = config.get("model_type")
    if not model_type or not isinstance(model_type, str):
        raise StRecipeError(f"the config has no model_type (keys: {', '.join(sorted(config)[:12])}); "
                            "is it a transformers config.json?")
    return model_type


def _resolve(config: dict[str, Any], nested: bool) -> dict[str, Any]:
    """The config with transformers' defaults filled in, or a one-line error naming missing shape keys."""
    model_type = _model_type(config)
    if not nested:
        missing = [k for k in _CORE_KEYS[model_type] if config.get(k) is None]
        if missing:
            raise StRecipeError(f"{model_type} config lacks {', '.join(missing)}")
    # An explicit null stays null: transformers then derives the value (kv heads = heads, head_dim = h / heads).
    return {**_DEFAULTS[model_type], **config}


def _count(model_type: str, c: dict[str, Any]) -> dict[str, Any]:
    """Shape fields and closed-form counts for one architecture (config already resolved)."""
    V = int(c["vocab_size"])
    tied = bool(c.get("tie_word_embeddings"))
    if model_type == "gpt2":
        h, L, H = int(c["n_embd"]), int(c["n_layer"]), int(c["n_head"])
        if c.get("add_cross_attention"):
            raise StRecipeError("gpt2 configs with add_cross_attention (encoder-decoder use) are not decoders")
        f = int(c["n_inner"] or 4 * h)
        # ln_1, c_attn (3h), c_proj, ln_2, c_fc, c_proj; every Conv1D has a bias, every LayerNorm one too.
        per_layer = 2 * h + (3 * h * h + 3 * h) + (h * h + h) + 2 * h + (h * f + f) + (f * h + h)
        n = L * per_layer + 2 * h
        positions = int(c["n_positions"])
        inputs = V * h + positions * h
        head = 0 if tied else V * h
        return dict(num_layers=L, hidden_size=h, num_heads=H, num_kv_heads=H, head_dim=h // H,
                    intermediate_size=f, gated_mlp=False, n_params=n, n_input_embedding_params=inputs,
                    n_embedding_params=inputs + head, max_positions=positions, rotary_pct=0.0,
                    tie_word_embeddings=tied, vocab_size=V)
    if model_type == "opt":
        h, L, H, f = (int(c[k]) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "ffn_dim"))
        wep = int(c["word_embed_proj_dim"] or h)
        b = bool(c["enable_bias"])
        ln = 2 * h if c["layer_norm_elementwise_affine"] else 0
        per_layer = 4 * h * h + (4 * h if b else 0) + ln + (h * f + (f if b else 0)) + (f * h + (h if b else 0)) + ln
        n = L * per_layer
        if c["do_layer_norm_before"] and not c["_remove_final_layer_norm"]:
            n += ln
        if wep != h:
            n += 2 * wep * h  # project_in and project_out, bias-free linear layers (not embeddings)
        positions = int(c["max_position_embeddings"])
        # OPT's learned positions keep two extra rows (ids are offset by 2).
        inputs = V * wep + (positions + 2) * h
        head = 0 if tied else V * wep
        return dict(num_layers=L, hidden_size=h, num_heads=H, num_kv_heads=H, head_dim=h // H,
                    intermediate_size=f, gated_mlp=False, n_params=n, n_input_embedding_params=inputs,
                    n_embedding_params=inputs + head, max_positions=positions, rotary_pct=0.0,
                    tie_word_embeddings=tied, vocab_size=V)
    h, L, H, f = (int(c[k]) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"))
    positions = int(c.get("max_position_embeddings") or 0)
    inputs = V * h
    head = 0 if tied else V * h
    if model_type == "gpt_neox":
        b = bool(c["attention_bias"])
        # Two LayerNorms (weight + bias), fused qkv and dense (biased unless attention_bias is off),
        # and a plain MLP whose linears always carry biases.
        per_layer = 4 * h + (3 * h * h + (3 * h if b else 0)) + (h * h + (h if b else 0)) + (h * f + f) + (f * h + h)
        n = L * per_layer + 2 * h
        return dict(num_layers=L, hidden_size=h, num_heads=H, num_kv_heads=H, head_dim=h // H,
                    intermediate_size=f, gated_mlp=False, n_params=n, n_input_embedding_params=inputs,
                    n_embedding_params=inputs + head, max_positions=positions, rotary_pct=_rotary_pct(c, 0.25),
                    tie_word_embeddings=tied, vocab_size=V)
    layout = _LLAMA_LIKE[model_type]
    kv = int(c.get("num_key_value_heads") or H)
    d = int(c.get("head_dim") or h // H)
    q, k = H * d, kv * d
    attn = h * q + 2 * h * k + q * h
    if layout.qkv_bias is True:  # Qwen2: fixed biases on q, k and v only
        attn += q + 2 * k
    elif isinstance(layout.qkv_bias, str) and c.get(layout.qkv_bias):  # the config switch biases o_proj too
        attn += q + 2 * k + h
    mlp = 3 * h * f
    if layout.mlp_bias and c.get(layout.mlp_bias):
        mlp += 2 * f + h
    norms = layout.norms * h + (2 * d if layout.qk_norm else 0)
    n = L * (attn + mlp + norms) + h
    return dict(num_layers=L, hidden_size=h, num_heads=H, num_kv_heads=kv, head_dim=d, intermediate_size=f,
                gated_mlp=True, n_params=n, n_input_embedding_params=inputs, n_embedding_params=inputs + head,
                max_positions=positions, rotary_pct=_rotary_pct(c, 1.0), tie_word_embeddings=tied, vocab_size=V)


def _rotary_pct(c: dict[str, Any], default: float) -> float:
    rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
    for value in (c.get("rotary_pct"), c.get("partial_rotary_factor"),
                  rope.get("partial_rotary_factor") if isinstance(rope, dict) else None):
        if value is not None:
            return float(value)
    return default


# Generic key names for architectures without a formula: (what, aliases).
_GENERIC_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hidden size", ("hidden_size", "n_embd", "d_model")),
    ("layers", ("num_hidden_layers", "n_layer", "num_layers")),
    ("attention heads", ("num_attention_heads", "n_head", "num_heads")),
    ("MLP width", ("intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size", "d_ff")),
    ("vocabulary", ("vocab_size",)),
)


def _generic(config: dict[str, Any], model_type: str, nested: bool) -> dict[str, Any]:
    """Shape of an architecture without a formula: standard keys, with N counted exactly on ``meta``."""
    if not nested:
        missing = [f"{what} ({'/'.join(aliases)})" for what, aliases in _GENERIC_KEYS
                   if all(config.get(a) is None for a in aliases)]
        if missing:
            raise StRecipeError(
                f"cannot read architecture {model_type!r}: its config lacks {'; '.join(missing)} "
                f"(architectures with exact formulas: {', '.join(ARCHITECTURES)})"
            )
    from st_recipe.methods.base import count_params

    model = _build_meta(config)
    # The config object has transformers' defaults filled in (and maps aliases such as n_embd).
    hf = model.config

    def value(aliases: tuple[str, ...]) -> Any:
        return next((getattr(hf, a) for a in aliases if getattr(hf, a, None) is not None), None)

    h, L, H, f, V = (value(aliases) for _, aliases in _GENERIC_KEYS)
    if None in (h, L, H, f, V):
        raise StRecipeError(f"cannot read the shape of architecture {model_type!r} from its config")
    h, L, H, f, V = int(h), int(L), int(H), int(f), int(V)
    report = count_params(model, "shape")
    tied = bool(getattr(hf, "tie_word_embeddings", False))
    inputs = report.n_params_all - report.n_params
    leaves = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    as_dict = hf.to_dict()
    kv = int(getattr(hf, "num_key_value_heads", None) or H)
    return dict(num_layers=L, hidden_size=h, num_heads=H, num_kv_heads=kv,
                head_dim=int(getattr(hf, "head_dim", None) or h // H), intermediate_size=f,
                gated_mlp=any("gate" in n for n in leaves), n_params=report.n_params,
                n_input_embedding_params=inputs, n_embedding_params=inputs + (0 if tied else V * h),
                max_positions=int(value(("max_position_embeddings", "n_positions")) or 0),
                rotary_pct=_rotary_pct(as_dict, 1.0 if any(k.startswith("rope") for k in as_dict) else 0.0),
                tie_word_embeddings=tied, vocab_size=V)


def shape_from_config(config: dict[str, Any], name: str) -> ModelShape:
    """A :class:`ModelShape` from a parsed config.json (a nested ``text_config`` is the decoder read).

    Architectures in :data:`ARCHITECTURES` use closed forms; any other that has the standard keys is
    built once on the ``meta`` device for its exact N (slower: imports torch); one missing them is a
    one-line error naming the keys.
    """
    text, nested = _text_config(config)
    model_type = _model_type(text)
    if model_type in _DEFAULTS:
        fields = _count(model_type, _resolve(text, nested))
    else:
        fields = _generic(text, model_type, nested)
    found = pretrain_lr_for(config, name)
    return ModelShape(
        name=_display_name(name), family=_LR_FAMILY[found[1]] if found else model_type, model_type=model_type,
        pretrain_lr=found[0] if found else None, pretrain_lr_source=found[1] if found else None,
        hub_id=name, config_json=json.dumps(config, sort_keys=True, default=str), **fields,
    )


def shape_for(model: str) -> ModelShape:
    """Read a model's config (see :func:`read_config`) and return its shape."""
    return shape_from_config(read_config(model), model)


def _display_name(name: str) -> str:
    from st_recipe.catalog import RANDOM_PREFIX

    raw = name.strip()
    if raw.startswith(RANDOM_PREFIX):
        return raw
    return os.path.basename(raw.rstrip("/")) if os.sep in raw and os.path.isdir(os.path.expanduser(raw)) else raw


# ---------------------------------------------------------------------------------------- meta device


def _hf_config(text: dict[str, Any]) -> Any:
    """A transformers config object from a (text) config dict, or a one-line error."""
    from transformers import CONFIG_MAPPING

    model_type = text.get("model_type")
    if text.get("auto_map"):
        raise StRecipeError(f"{model_type!r} models need remote code (auto_map); "
                            "st-recipe builds only architectures transformers ships")
    if model_type not in CONFIG_MAPPING:
        raise StRecipeError(f"transformers {_transformers_version()} does not know model_type {model_type!r}")
    try:
        return CONFIG_MAPPING[model_type].from_dict(dict(text))
    except (TypeError, ValueError, KeyError) as exc:
        raise StRecipeError(f"invalid {model_type} config: {_first_line(exc)}") from exc


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _build_meta(config: dict[str, Any]) -> Any:
    """The transformers base model (AutoModel, as the encoder loads it) of a config, on the meta device."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    text, _ = _text_config(config)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # token-id range warnings of shrunken test configs are noise here
    try:
        hf_config = _hf_config(text)
        with torch.device("meta"):
            return AutoModel.from_config(hf_config)
    except StRecipeError:
        raise
    except (AssertionError, ValueError, TypeError, RuntimeError, KeyError) as exc:
        raise StRecipeError(f"cannot build {text.get('model_type')} from its config: {_first_line(exc)}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)


def meta_model(config: dict[str, Any]) -> Any:
    """The base model of a config on the ``meta`` device: real module structure, no tensor memory.

    For a multimodal config with a ``text_config`` (Gemma 3) this is the text decoder alone: a text
    encoder never runs the vision tower, so its parameters are not part of N.
    """
    return _build_meta(config)


class _Slot:
    """Stands in for sentence-transformers' Transformer module: ``auto_model`` reads, ``model`` is set."""

    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def auto_model(self) -> Any:
        return self.model


class _Encoder:
    """The least of a SentenceTransformer that ``Method.apply`` touches (``hf_model`` / ``set_hf_model``)."""

    _first_module = True

    def __init__(self, model: Any) -> None:
        self._slot = _Slot(model)

    def __getitem__(self, index: int) -> _Slot:
        if index != 0:
            raise IndexError(index)
        return self._slot


_META_CACHE: dict[tuple[str, str, str], tuple[int, int, ParamReport]] = {}


def meta_counts(config: dict[str, Any], method: Any) -> tuple[int, int, ParamReport]:
    """Exact (N, N_t, ParamReport) of ``method`` applied to the config's base model, built on ``meta``.

    Injected adapters are created on ``meta`` too, so no parameter memory is allocated at any size.
    """
    import torch

    key = (json.dumps(config, sort_keys=True, default=str), type(method).__qualname__, method.describe())
    hit = _META_CACHE.get(key)
    if hit is not None:
        return hit
    model = _build_meta(config)
    encoder = _Encoder(model)
    with torch.device("meta"):
        report = method.apply(encoder)
    result = (report.n_params, report.n_trainable, report)
    _META_CACHE[key] = result
    return result


# ----------------------------------------------------------------------------- published pretraining LRs


@dataclass(frozen=True)
class PretrainLR:
    """A published peak pretraining learning rate, with the model shape it belongs to and its source."""

    lr: float
    source: str
    family: str
    model_type: str
    hidden_size: int
    num_layers: int
    pattern: str  # matched against the lower-cased last component of the model name


_LLAMA2 = "Touvron et al. 2023, 'Llama 2: Open Foundation and Fine-Tuned Chat Models', Table 1"
_LLAMA1 = "Touvron et al. 2023, 'LLaMA: Open and Efficient Foundation Language Models', Table 2"
_OPT = "Zhang et al. 2022, 'OPT: Open Pre-trained Transformer Language Models', Table 1"
_TINYLLAMA = "Zhang et al. 2024, 'TinyLlama: An Open-Source Small Language Model', Section 2.3"
_OLMO = "Groeneveld et al. 2024, 'OLMo: Accelerating the Science of Language Models', Table 1"
_PYTHIA = "Biderman et al. 2023, 'Pythia: A Suite for Analyzing Large Language Models' (st_recipe.catalog)"

# Only rates stated in the papers; GPT-2, Mistral, Qwen, Gemma, Phi-3 and SmolLM2 publish none per size.
PRETRAIN_LRS: dict[str, PretrainLR] = {
    "llama-2-7b": PretrainLR(3e-4, _LLAMA2, "llama-2", "llama", 4096, 32, r"llama-2-7b(-hf|-chat|-chat-hf)?"),
    "llama-2-13b": PretrainLR(3e-4, _LLAMA2, "llama-2", "llama", 5120, 40, r"llama-2-13b(-hf|-chat|-chat-hf)?"),
    "llama-2-70b": PretrainLR(1.5e-4, _LLAMA2, "llama-2", "llama", 8192, 80, r"llama-2-70b(-hf|-chat|-chat-hf)?"),
    "llama-7b": PretrainLR(3e-4, _LLAMA1, "llama", "llama", 4096, 32, r"llama-7b(-hf)?"),
    "llama-13b": PretrainLR(3e-4, _LLAMA1, "llama", "llama", 5120, 40, r"llama-13b(-hf)?"),
    "llama-30b": PretrainLR(1.5e-4, _LLAMA1, "llama", "llama", 6656, 60, r"llama-3[03]b(-hf)?"),
    "llama-65b": PretrainLR(1.5e-4, _LLAMA1, "llama", "llama", 8192, 80, r"llama-65b(-hf)?"),
    "opt-125m": PretrainLR(6e-4, _OPT, "opt", "opt", 768, 12, r"opt-125m"),
    "opt-350m": PretrainLR(3e-4, _OPT, "opt", "opt", 1024, 24, r"opt-350m"),
    "opt-1.3b": PretrainLR(2e-4, _OPT, "opt", "opt", 2048, 24, r"opt-1\.3b"),
    "opt-2.7b": PretrainLR(1.6e-4, _OPT, "opt", "opt", 2560, 32, r"opt-2\.7b"),
    "opt-6.7b": PretrainLR(1.2e-4, _OPT, "opt", "opt", 4096, 32, r"opt-6\.7b"),
    "opt-13b": PretrainLR(1e-4, _OPT, "opt", "opt", 5120, 40, r"opt-13b"),
    "opt-30b": PretrainLR(1e-4, _OPT, "opt", "opt", 7168, 48, r"opt-30b"),
    "opt-66b": PretrainLR(8e-5, _OPT, "opt", "opt", 9216, 64, r"opt-66b"),
    "tinyllama-1.1b": PretrainLR(4e-4, _TINYLLAMA, "tinyllama", "llama", 2048, 22, r"tinyllama-1\.1b(-.*)?"),
    "olmo-1b": PretrainLR(4e-4, _OLMO, "olmo", "olmo", 2048, 16, r"olmo-1b(-hf)?"),
    "olmo-7b": PretrainLR(3e-4, _OLMO, "olmo", "olmo", 4096, 32, r"olmo-7b(-hf)?"),
}
_LR_FAMILY = {e.source: e.family for e in PRETRAIN_LRS.values()} | {_PYTHIA: "pythia"}


def _name_candidates(config: dict[str, Any], name: str) -> list[str]:
    from st_recipe.catalog import RANDOM_PREFIX

    out = []
    for raw in (name, config.get("_name_or_path")):
        if isinstance(raw, str) and raw.strip():
            out.append(raw.strip().removeprefix(RANDOM_PREFIX).rstrip("/").rsplit("/", 1)[-1].lower())
    return out


def pretrain_lr_for(config: dict[str, Any], name: str) -> tuple[float, str] | None:
    """(published pretraining LR, its source) when the name and the config's shape match a known model."""
    text, nested = _text_config(config)
    model_type = text.get("model_type")
    if model_type in _DEFAULTS:
        try:
            c = _resolve(text, nested)
        except StRecipeError:
            return None
    else:
        c = text
    hidden = c.get("hidden_size", c.get("n_embd"))
    layers = c.get("num_hidden_layers", c.get("n_layer"))
    from st_recipe.catalog import get_spec

    for base in _name_candidates(config, name):
        if model_type == "gpt_neox":
            try:
                spec = get_spec(base)
            except StRecipeError:
                spec = None
            if spec is not None and (spec.hidden_size, spec.num_layers) == (hidden, layers):
                return spec.pretrain_lr, _PYTHIA
        for entry in PRETRAIN_LRS.values():
            if (re.fullmatch(entry.pattern, base) and entry.model_type == model_type
                    and (entry.hidden_size, entry.num_layers) == (hidden, layers)):
                return entry.lr, entry.source
    return None
