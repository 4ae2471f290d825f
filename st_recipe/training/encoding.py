"""The padding-free strategy for a model: packed rows, or sub-batches priced with its cost profile."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from st_recipe.training.packing import PaddingFree, plan_groups

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
