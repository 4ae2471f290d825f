"""Shapes and exact parameter counts of any Hugging Face decoder from its ``config.json``, without weights.

``shape_from_config`` turns a parsed config (see :mod:`st_recipe.models.config` for reading one) into a
:class:`ModelShape` whose closed-form non-embedding count N is exact for the architectures in
:data:`ARCHITECTURES`; any other architecture is built once on PyTorch's ``meta`` device
(:mod:`st_recipe.models.meta`, which also reports (N, N_t) exactly as ``method.apply`` does on a real encoder).
The tests keep the formulas and the meta counts equal. The published pretraining LR, when one is known,
comes from :mod:`st_recipe.models.pretrain_lrs`.

Counting follows the paper's convention (see ``methods/base.py``): N excludes every parameter whose name
contains "emb" or that an embedding module owns: token embeddings, learned position embeddings (GPT-2,
OPT) and the LM head (absent from the base model the encoder uses; tied heads add nothing anyway).

Nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.models.config import (
    DEFAULTS,
    check_shape_values,
    model_type_of,
    read_config,
    resolve_config,
    text_config,
)
from st_recipe.models.meta import build_hf_config, meta_model
from st_recipe.models.pretrain_lrs import LR_FAMILY, pretrain_lr_for


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

ARCHITECTURES: tuple[str, ...] = tuple(DEFAULTS)


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
        return build_hf_config(text_config(self.config())[0])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the derived values."""
        out = asdict(self)
        out.pop("config_json")
        out.update(attention_width=self.attention_width, finetune_lr=self.finetune_lr,
                   n_params_total=self.n_params_total)
        return out


# ------------------------------------------------------------------------------------------ formulas


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


def has_biases(spec: Any) -> bool | None:
    """Whether the base model of a shape holds any bias parameter, from its config; None when not known without torch.

    Catalogue specs are GPT-NeoX (biased); a :class:`ModelShape` of an architecture with a formula is read
    from its config switches, the same ones :func:`_count` counts by.
    """
    if not isinstance(spec, ModelShape):
        return True if getattr(spec, "family", None) == "pythia" else None
    text, nested = text_config(spec.config())
    model_type = model_type_of(text)
    if model_type not in DEFAULTS:
        return None
    c = resolve_config(text, nested)
    if model_type in ("gpt2", "gpt_neox"):
        return True  # LayerNorm biases at least
    if model_type == "opt":
        return bool(c["enable_bias"]) or bool(c["layer_norm_elementwise_affine"])
    layout = _LLAMA_LIKE[model_type]
    return bool(layout.qkv_bias is True or (isinstance(layout.qkv_bias, str) and c.get(layout.qkv_bias))
                or (layout.mlp_bias and c.get(layout.mlp_bias)))


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
    from st_recipe.models.architecture import count_params

    model = meta_model(config)
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
    text, nested = text_config(config)
    check_shape_values(text, f"the config of {name!r}")
    model_type = model_type_of(text)
    if model_type in DEFAULTS:
        fields = _count(model_type, resolve_config(text, nested))
    else:
        fields = _generic(text, model_type, nested)
    found = pretrain_lr_for(config, name)
    return ModelShape(
        name=_display_name(name), family=LR_FAMILY[found[1]] if found else model_type, model_type=model_type,
        pretrain_lr=found[0] if found else None, pretrain_lr_source=found[1] if found else None,
        hub_id=name, config_json=json.dumps(config, sort_keys=True, default=str), **fields,
    )


def shape_for(model: str) -> ModelShape:
    """Read a model's config (see :func:`read_config`) and return its shape."""
    return shape_from_config(read_config(model), model)


def _display_name(name: str) -> str:
    from st_recipe.models.catalog import RANDOM_PREFIX

    raw = name.strip()
    if raw.startswith(RANDOM_PREFIX):
        return raw
    return os.path.basename(raw.rstrip("/")) if os.sep in raw and os.path.isdir(os.path.expanduser(raw)) else raw


def resolve_shape(model: str) -> Any:
    """The shape planning needs: the catalogue's ModelSpec, else a ModelShape read from the model's config.

    A Hub id reads only its ``config.json`` (cached; one line when offline); a local folder its own file.
    """
    from st_recipe.models.args import parse_model_spec

    ref = parse_model_spec(model)
    if ref.spec is not None:
        return ref.spec
    return shape_for(ref.raw)
