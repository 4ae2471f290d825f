"""The padding-free strategy for a model (packed rows, sub-batches priced with its cost profile), for training
and for encoding (held-out scores, ``st-recipe eval``)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

from st_recipe.training.packing import PaddingFree, default_overhead, padding_free, plan_groups

if TYPE_CHECKING:  # pragma: no cover
    from st_recipe.flops import CostProfile


def padding_free_strategy(profile: CostProfile, overhead_tokens: float, *, pack: bool = True) -> Any:
    """The default padding-free strategy for a model with cost ``profile`` (see :mod:`st_recipe.training.packing`)."""
    return PaddingFree(sub_batch_planner(profile, overhead_tokens), profile.sequence_flops, pack=pack)


def sub_batch_planner(profile: CostProfile, overhead_tokens: float) -> Any:
    """The padding-free plan for one side's lengths: length-sorted groups priced with ``profile``."""
    from functools import lru_cache

    overhead = overhead_tokens * profile.per_token

    @lru_cache(maxsize=16)  # metering and the forward plan the same sides: plan each once
    def plan(lengths: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(g) for g in plan_groups(lengths, cost=profile.sequence_flops, overhead=overhead))

    def planner(lengths: list[int]) -> list[list[int]]:
        return [list(g) for g in plan(tuple(int(t) for t in lengths))]

    return planner


@contextlib.contextmanager
def padding_free_encoding(st_model: Any) -> Iterator[bool]:
    """Within the block, ``st_model.encode`` runs padding-free (packed rows, checked once) where that is exact.

    Yields whether it does: a left-padded tokenizer keeps the padded batches. Used for held-out scores and
    ``st-recipe eval``; sentence-transformers already sorts texts by length, so packing only removes what
    padding is left inside each sorted batch.
    """
    tokenizer = getattr(st_model[0], "tokenizer", None)
    if getattr(tokenizer, "padding_side", "right") != "right":
        yield False
        return
    import torch

    from st_recipe.flops import profile_model

    device = next(st_model.parameters()).device
    strategy = padding_free_strategy(profile_model(st_model), default_overhead(device))
    with torch.no_grad(), padding_free(st_model, strategy):
        yield True
