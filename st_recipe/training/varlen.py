"""Varlen attention: a side's texts as one flat token stream, attention restricted to each text.

The linear layers (most of a decoder's FLOPs) then run over the real tokens only, one large matrix product per
layer, and attention runs text by text through transformers' own SDPA function, so nothing is computed for
padding and no text ever attends to another: executed FLOPs equal the useful ones on any length distribution.

How it plugs into transformers without touching a model's code: an attention implementation
``st_recipe_varlen_sdpa`` is registered in transformers' ``AttentionInterface`` (and a matching entry in its
``AttentionMaskInterface``). Called with flash-attention's packing keywords (``cu_seq_lens_q`` ...), which every
decoder forwards to its attention layers, it attends within each ``[cu[i], cu[i+1])`` span; called without them
it *is* SDPA (same function, same mask), so evaluation, held-out scores and gradient-checkpoint recomputation
(which replays the layer with its keywords) stay exact. While a flat stream runs, no mask is built at all (a
packed-sequence mask would be ``O(tokens^2)``).

The switch is made per model by :func:`enable` after :func:`varlen_works` compared the flat stream's
embeddings with the padded batch's; :func:`disable` puts the original implementation back before saving.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

PREFIX = "st_recipe_varlen_"
# Only SDPA has a model-independent function to fall back to (each model file has its own eager function).
BASES = ("sdpa",)
VARLEN_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")
_FLAT = contextvars.ContextVar("st_recipe_flat_stream", default=False)
_BOUNDS: dict[str, Any] = {"tensor": None, "sizes": []}


def implementation_name(base: str) -> str:
    """The registered name of the varlen implementation that falls back to ``base``."""
    return PREFIX + base


def _sizes(cu: Any) -> list[int]:
    """Text lengths from cumulative bounds; every layer gets the same tensor, so it is read once per forward."""
    if _BOUNDS["tensor"] is not cu:
        bounds = [int(x) for x in cu.tolist()]
        _BOUNDS["tensor"], _BOUNDS["sizes"] = cu, [e - s for s, e in zip(bounds[:-1], bounds[1:])]
    return _BOUNDS["sizes"]


def _varlen_sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> tuple[Any, None]:
    """SDPA over each text of a flat stream (``cu_seq_lens_q`` given), else transformers' own SDPA function."""
    import torch
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    cu = kwargs.get("cu_seq_lens_q")
    if cu is None or query.shape[0] != 1 or attention_mask is not None:
        rest = {k: v for k, v in kwargs.items() if k not in VARLEN_KEYS}
        return sdpa_attention_forward(module, query, key, value, attention_mask, **rest)
    if kwargs.get("softcap") is not None or kwargs.get("position_bias") is not None:
        raise ValueError("varlen attention: softcap and position bias are not supported")
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:  # once for the whole stream, not once per text
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    is_causal = kwargs.get("is_causal")
    is_causal = getattr(module, "is_causal", True) if is_causal is None else is_causal
    sizes = _sizes(cu)
    # Each text is its own SDPA call, causal (or bidirectional, per the module) from its first token: exact, and
    # few operations per text (a machine shared with other jobs makes every small operation expensive). split, not
    # slicing: its backward is one concatenation, where each slice's backward fills a stream-sized zero gradient.
    outs = [torch.nn.functional.scaled_dot_product_attention(
                q, k, v, dropout_p=kwargs.get("dropout", 0.0), scale=kwargs.get("scaling"),
                is_causal=bool(is_causal) and q.shape[2] > 1)
            for q, k, v in zip(query.split(sizes, dim=2), key.split(sizes, dim=2), value.split(sizes, dim=2))]
    return torch.cat(outs, dim=2).transpose(1, 2).contiguous(), None


def _varlen_mask(*args: Any, **kwargs: Any) -> Any:
    """SDPA's mask, except for a flat stream (each text's span is given to attention directly)."""
    from transformers.masking_utils import sdpa_mask

    if _FLAT.get():
        return None
    return sdpa_mask(*args, **kwargs)


def register() -> None:
    """Register the varlen implementations with transformers (idempotent)."""
    from transformers.masking_utils import AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    for base in BASES:
        name = implementation_name(base)
        if name not in AttentionInterface._global_mapping:
            AttentionInterface.register(name, _varlen_sdpa)
            AttentionMaskInterface.register(name, _varlen_mask)


def _config(hf_model: Any) -> Any:
    return getattr(hf_model, "config", None)


def current(hf_model: Any) -> str:
    """The attention implementation a transformers model runs now ("" when it has none)."""
    config = _config(hf_model)
    return str(getattr(config, "_attn_implementation", "") or "")


def supported(hf_model: Any, max_length: int | None = None) -> bool:
    """Whether the flat stream can be exact for this model: SDPA attention, no sliding window a text could exceed."""
    config = _config(hf_model)
    if config is None or current(hf_model) not in (*BASES, *(implementation_name(b) for b in BASES)):
        return False
    window = getattr(config, "sliding_window", None)
    if window and getattr(config, "use_sliding_window", True) is not False:
        # Per-text causal SDPA has no window: only exact while no text is longer than it.
        limit = max_length or getattr(config, "max_position_embeddings", None)
        if limit is None or int(window) < int(limit):
            return False
    return True


def enable(hf_model: Any) -> str:
    """Switch ``hf_model`` to the varlen implementation; returns the implementation it ran before."""
    register()
    before = current(hf_model)
    base = before[len(PREFIX):] if before.startswith(PREFIX) else before
    _config(hf_model)._attn_implementation = implementation_name(base)
    return before


def disable(hf_model: Any, before: str | None = None) -> None:
    """Put back the implementation ``enable`` replaced (the base one when ``before`` is not given)."""
    now = current(hf_model)
    if now.startswith(PREFIX):
        _config(hf_model)._attn_implementation = before if before and not before.startswith(PREFIX) else now[len(PREFIX):]


@contextlib.contextmanager
def flat_stream() -> Iterator[None]:
    """Within the block, transformers builds no attention mask for a varlen model (the spans stand in for it)."""
    token = _FLAT.set(True)
    try:
        yield
    finally:
        _FLAT.reset(token)


def encode_flat(st_model: Any, features: dict[str, Any]) -> dict[str, Any]:
    """One forward of a right-padded side as a single flat stream of its real tokens (the model must be enabled).

    The token states are scattered back to the padded layout, and the remaining modules (pooling, normalisation)
    run on them with the original attention mask, as in the padded batch.
    """
    import torch

    mask, ids = features["attention_mask"], features["input_ids"]
    rows, width = mask.shape
    lengths = mask.sum(dim=1)
    device = ids.device
    keep = mask.reshape(-1).bool()
    flat_ids = ids.reshape(-1)[keep]
    cu = torch.zeros(rows + 1, dtype=torch.int32, device=device)
    cu[1:] = torch.cumsum(lengths, dim=0)
    starts = torch.repeat_interleave(cu[:-1].long(), lengths)
    position_ids = torch.arange(flat_ids.shape[0], device=device) - starts
    longest = int(lengths.max())
    modules = list(st_model.children())
    first = modules[0]
    with flat_stream():
        out = first({"input_ids": flat_ids[None], "position_ids": position_ids[None],
                     "cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest})
    key = getattr(first, "module_output_name", "token_embeddings")
    states = out[key][0]
    padded = states.new_zeros(rows * width, states.shape[-1])
    padded = padded.index_copy(0, keep.nonzero().squeeze(1), states)
    result = dict(features)
    result[key] = padded.reshape(rows, width, -1)
    for module in modules[1:]:
        result = module(result)
    return result


def varlen_works(st_model: Any, features: dict[str, Any], rtol: float = 1e-4) -> str | None:
    """Switch the model to varlen attention if the flat stream gives the padded batch's embeddings (no gradients).

    Returns the implementation it replaced (for :func:`disable`), or None where it did not switch: a model that
    fails (or raises) keeps its own implementation.
    """
    import torch

    hf = getattr(st_model[0], "auto_model", None)
    if hf is None or not supported(hf, getattr(st_model, "max_seq_length", None)):
        return None
    was_training = st_model.training
    st_model.eval()
    before = current(hf)
    try:
        with torch.no_grad():
            padded = type(st_model).forward(st_model, dict(features))["sentence_embedding"].float()
            enable(hf)
            flat = encode_flat(st_model, dict(features))["sentence_embedding"].float()
            again = type(st_model).forward(st_model, dict(features))["sentence_embedding"].float()
        scale = max(float(padded.abs().max()), 1e-6)
        ok = (bool(torch.isfinite(flat).all()) and float((flat - padded).abs().max()) <= rtol * scale
              and float((again - padded).abs().max()) <= rtol * scale)
    except Exception:  # noqa: BLE001 - any failure means: keep the model's own attention
        ok = False
    finally:
        st_model.train(was_training)
    if not ok:
        disable(hf, before)
        return None
    return before
