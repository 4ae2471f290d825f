"""Packed rows: a side's texts first-fit packed into a few rows of its longest length (a padding-free layout).

``position_ids`` restart at 0 for every text and no 2D mask is passed, so transformers builds a causal mask that
never crosses texts (sdpa/eager/flex) or runs flash-attention's varlen kernel. Used where the flat stream of
:mod:`st_recipe.training.varlen` does not fit a model (checked once, like this layout, against the padded batch).
"""

from __future__ import annotations

from typing import Any, Sequence


def right_padded(mask: Any, lengths: Any) -> bool:
    """Whether every row of ``mask`` is ``lengths[i]`` ones followed by zeros (right padding)."""
    import torch

    width = mask.shape[1]
    expected = torch.arange(width, device=mask.device)[None, :] < lengths[:, None]
    return bool(torch.equal(mask.bool(), expected))


def first_fit(lengths: Sequence[int], width: int) -> list[list[int]]:
    """Row indices packed into bins of ``width`` tokens: first fit, longest texts first."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-int(lengths[i]), i)):
        t = int(lengths[i])
        for b, free in enumerate(room):
            if t <= free:
                bins[b].append(i)
                room[b] -= t
                break
        else:
            bins.append([i])
            room.append(width - t)
    return bins


def runs_flash_varlen(st_model: Any) -> bool:
    """Whether the model runs flash-attention, whose varlen kernel attends within each packed text only."""
    try:
        impl = str(st_model[0].auto_model.config._attn_implementation or "")
    except (AttributeError, IndexError, KeyError, TypeError):
        return False
    return impl.startswith("flash_attention") or impl.endswith("flash_attention_2") or impl.endswith("flash_attention_3")


def packable_bins(mask: Any) -> list[list[int]] | None:
    """The bins of a right-padded side, or None when packing saves no row (or the mask is not right-padded)."""
    if mask.shape[0] < 2:
        return None
    lengths_t = mask.sum(dim=1)
    if not right_padded(mask, lengths_t):
        return None
    bins = first_fit([int(x) for x in lengths_t.tolist()], mask.shape[1])
    return bins if len(bins) < mask.shape[0] else None


def encode_packed(st_model: Any, features: dict[str, Any], bins: list[list[int]] | None = None,
                  row_width: int | None = None) -> dict[str, Any] | None:
    """One forward of a side's texts packed into a few rows of its longest length; None where unsupported.

    ``row_width`` (default: the padded width) can be larger, e.g. the sum of the lengths with ``bins`` one
    row of every text: the single-row layout that flash-attention's varlen kernel runs without any padding.

    Each row holds several texts back to back, ``position_ids`` restart at 0 for each, and no attention
    mask is passed: transformers then builds a causal mask that never crosses texts (``find_packed_sequence
    _indices``). The token states are scattered back to the padded layout and the remaining modules
    (pooling, normalisation) run on them with the original attention mask, as in the padded batch.
    """
    import torch

    mask = features.get("attention_mask")
    ids = features.get("input_ids")
    if mask is None or ids is None or mask.dim() != 2:
        return None
    bins = bins if bins is not None else packable_bins(mask)
    if bins is None:
        return None  # nothing packs: the padded batch is as small
    rows, width = mask.shape
    row = int(row_width or width)
    lengths = [int(x) for x in mask.sum(dim=1).tolist()]
    device = ids.device
    src, dst, pos = [], [], []
    for b, members in enumerate(bins):
        offset = 0
        for i in members:
            n = lengths[i]
            src.extend(range(i * width, i * width + n))
            dst.extend(range(b * row + offset, b * row + offset + n))
            pos.extend(range(n))
            offset += n
        if offset > row:
            raise ValueError(f"bin {b} holds {offset} tokens, more than the row width {row}")
        pos.extend(range(row - offset))  # the tail of the row is a sequence of its own
    src_t = torch.tensor(src, device=device)
    dst_t = torch.tensor(dst, device=device)
    packed_ids = torch.zeros(len(bins) * row, dtype=ids.dtype, device=device)
    packed_ids[dst_t] = ids.reshape(-1)[src_t]
    position_ids = torch.tensor(pos, device=device).reshape(len(bins), row)
    modules = list(st_model.children())
    first = modules[0]
    out = first({"input_ids": packed_ids.reshape(len(bins), row), "position_ids": position_ids})
    key = getattr(first, "module_output_name", "token_embeddings")
    states = out[key]
    hidden = states.shape[-1]
    # Back to the padded layout: padding positions read row 0 of the packed states and are masked out.
    gather = torch.zeros(rows * width, dtype=torch.long, device=device)
    gather[src_t] = dst_t
    result = dict(features)
    result[key] = states.reshape(-1, hidden).index_select(0, gather).reshape(rows, width, hidden)
    for module in modules[1:]:
        result = module(result)
    return result


def packing_works(st_model: Any, features: dict[str, Any], rtol: float = 1e-4) -> bool:
    """Whether packed rows give this model the padded batch's embeddings (checked once, without gradients).

    Models whose attention ignores ``position_ids``-based packing, or that need the 2D mask, fail here
    and keep the sub-batch path.
    """
    import torch

    was_training = st_model.training
    st_model.eval()
    try:
        with torch.no_grad():
            packed = encode_packed(st_model, dict(features))
            if packed is None:
                return False
            padded = type(st_model).forward(st_model, dict(features))
            a, b = packed["sentence_embedding"].float(), padded["sentence_embedding"].float()
            return bool(torch.isfinite(a).all()) and float((a - b).abs().max()) <= rtol * max(float(b.abs().max()), 1e-6)
    except Exception:  # noqa: BLE001 - any failure means: do not pack this model
        return False
    finally:
        st_model.train(was_training)
