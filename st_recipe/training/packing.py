"""Padding-free training: each side of a batch runs without its padding, exactly.

A padded batch runs every text at the batch's longest length. Exact layouts replace it during training
only (the SentenceTransformer's ``forward`` is shadowed for one loss call; the saved model is the plain
``Transformer + Pooling``):

* one flat stream per side (the default, :mod:`st_recipe.training.varlen`): the real tokens only, attention
  restricted to each text, so executed FLOPs equal the useful ones on every length distribution. Checked
  once on the first batch against the padded embeddings; models it does not fit take the next layout.
* packed rows (:func:`~st_recipe.training.packed_rows.encode_packed`): a side's texts are first-fit packed into a few rows
  of its longest length, ``position_ids`` restart at 0 for every text and no 2D mask is passed, so
  transformers builds a causal mask that never crosses texts (sdpa/eager/flex) or runs flash-attention's
  varlen kernel (one row of every text, :func:`runs_flash_varlen`). One forward per side, linear layers
  over the real tokens only. It is checked once on the first batch against the padded embeddings
  (:func:`packing_works`); a model that fails keeps the sub-batch layout.
* length-sorted sub-batches (:func:`encode_sub_batches`): each side sorted by length and cut into a few
  groups, each trimmed to its own longest text; works for every architecture and attention kernel.
  Cut points come from a small dynamic programme: a group of ``n`` texts padded to ``L`` costs
  ``n * sequence_flops(L)`` plus a fixed per-forward overhead in tokens of per-token cost (larger on a
  GPU, where a small forward is launch-bound).

Embeddings go back in the original order before the loss, so the loss, its in-batch negatives and the
gradients are the padded batch's up to float rounding (with right padding a causal decoder's states never
see the padding after a text, and pooling masks it out). Left padding (or any mask that is not a prefix
of ones) keeps the padded forward: positions would shift with the trimmed padding.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from st_recipe.training.packed_rows import encode_packed, packable_bins, packing_works, right_padded, runs_flash_varlen

if TYPE_CHECKING:  # pragma: no cover
    from st_recipe.costing.flops import CostProfile

# Per-forward overhead of a sub-batch, in tokens of per-token cost (sub-batch layout only): a rough figure
# from pythia-70m-width runs on a shared 2-core CPU; on a GPU a small forward is launch-bound, so groups stay
# large. Not tuned on a GPU.
CPU_OVERHEAD_TOKENS = 256
GPU_OVERHEAD_TOKENS = 4096
MAX_GROUPS = 8
# Packing pays a scatter/gather and an index build per side: on a shared 2-core CPU it ran 0.93x of the padded
# batch on short-query/long-passage data (passage rows saved: few) and 1.14x on the built-in pairs, so a side is
# packed only when that removes at least this share of its rows (bench/results/padding_free.md).
MIN_ROW_SAVING = 0.2


def default_overhead(device: Any = None) -> int:
    """The per-group overhead (in tokens) for ``device`` (a torch device or its type string)."""
    kind = getattr(device, "type", device) or "cpu"
    return CPU_OVERHEAD_TOKENS if str(kind) == "cpu" else GPU_OVERHEAD_TOKENS


def plan_groups(lengths: Sequence[int], *, cost: Callable[[int], float] | None = None, overhead: float = 0.0,
                max_groups: int = MAX_GROUPS) -> list[list[int]]:
    """Row indices of each sub-batch: contiguous runs of the rows sorted by length (longest first).

    Minimises ``sum(len(group) * cost(max length in group)) + overhead * groups`` with at most
    ``max_groups`` groups. ``cost`` defaults to the length itself (padded tokens).
    """
    n = len(lengths)
    if n == 0:
        return []
    cost = cost or float
    order = sorted(range(n), key=lambda i: (-int(lengths[i]), i))
    sorted_len = [int(lengths[i]) for i in order]
    per = [cost(t) for t in sorted_len]  # per[i]: cost of a text padded to sorted_len[i]
    inf = float("inf")
    groups = max(1, min(max_groups, n))
    # best[g][j]: the cheapest split of sorted rows j..n-1 into at most g groups; cut[g][j] its first end.
    best = [[0.0] * (n + 1) for _ in range(groups + 1)]
    cut = [[n] * (n + 1) for _ in range(groups + 1)]
    for j in range(n):
        best[0][j] = inf
    for g in range(1, groups + 1):
        for j in range(n - 1, -1, -1):
            choice, where = inf, n
            for k in range(j + 1, n + 1):  # the group is rows j..k-1, padded to sorted_len[j]
                value = (k - j) * per[j] + overhead + best[g - 1][k]
                if value <= choice:  # on a tie, the larger group
                    choice, where = value, k
            best[g][j], cut[g][j] = choice, where
    out, j, g = [], 0, groups
    while j < n:
        k = cut[g][j]
        out.append(order[j:k])
        j, g = k, g - 1
    return out


def executed_flops(lengths: Sequence[int], groups: list[list[int]], sequence_flops: Callable[[int], float]) -> float:
    """FLOPs the sub-batches really execute: every text at its group's longest length."""
    return sum(len(g) * sequence_flops(max(int(lengths[i]) for i in g)) for g in groups)


def encode_sub_batches(forward: Callable[[dict[str, Any]], dict[str, Any]], features: dict[str, Any],
                       planner: Callable[[list[int]], list[list[int]]], embed: Any = None) -> dict[str, Any]:
    """``forward(features)`` run as length-sorted sub-batches; ``sentence_embedding`` in the original order.

    With ``embed`` (the model's input embedding module) the token embeddings of the whole side are looked
    up once and each sub-batch gets its slice as ``inputs_embeds``: the dense gradient of a large
    vocabulary is then built once per side, as in the padded batch, not once per sub-batch.
    """
    import torch

    mask = features.get("attention_mask")
    if mask is None or mask.dim() != 2 or mask.shape[0] < 2:
        return forward(features)
    rows, width = mask.shape
    lengths_t = mask.sum(dim=1)
    if not right_padded(mask, lengths_t):
        return forward(features)
    lengths = [int(x) for x in lengths_t.tolist()]
    groups = planner(lengths)
    if len(groups) == 1 and max(lengths) == width:
        return forward(features)
    embeds = embed(features["input_ids"]) if embed is not None and "input_ids" in features else None
    outputs, order = [], []
    for group in groups:
        longest = max(1, max(lengths[i] for i in group))
        index = torch.tensor(group, device=mask.device)
        sub = {}
        for key, value in features.items():
            if torch.is_tensor(value) and value.dim() >= 2 and value.shape[:2] == (rows, width):
                sub[key] = value.index_select(0, index)[:, :longest]
            elif torch.is_tensor(value) and value.dim() >= 1 and value.shape[0] == rows:
                sub[key] = value.index_select(0, index)
            else:
                sub[key] = value
        if embeds is not None:
            del sub["input_ids"]
            sub["inputs_embeds"] = embeds.index_select(0, index)[:, :longest]
        outputs.append(forward(sub)["sentence_embedding"])
        order.extend(group)
    embeddings = torch.cat(outputs, dim=0)
    inverse = torch.empty(rows, dtype=torch.long, device=embeddings.device)
    inverse[torch.tensor(order, device=embeddings.device)] = torch.arange(rows, device=embeddings.device)
    result = dict(features)
    result["sentence_embedding"] = embeddings.index_select(0, inverse)
    return result


def input_embedding(st_model: Any) -> Any:
    """The input embedding module of a SentenceTransformer over a transformers model whose forward takes
    ``inputs_embeds`` (None otherwise: the sub-batches then look their tokens up themselves)."""
    import inspect

    try:
        first = st_model[0]
        inner = first.auto_model
        if "inputs_embeds" not in inspect.signature(inner.forward).parameters:
            return None
        params = getattr(first, "model_forward_params", None)
        if params is not None and "inputs_embeds" not in params:
            return None
        return inner.get_input_embeddings()
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, NotImplementedError):
        return None


class PaddingFree:
    """How a training forward skips padding, and what it really ran.

    ``varlen`` (default): each side runs as one flat stream of its real tokens with attention per text
    (:mod:`st_recipe.training.varlen`), after a one-time check on the first batch that this gives the model the
    padded batch's embeddings; flash-attention models run their own varlen kernel instead. Where the check
    fails (or ``varlen=False``), ``pack``: texts first-fit packed into a few rows (:func:`~st_recipe.training.packed_rows.encode_packed`),
    checked the same way; else length-sorted sub-batches planned by ``planner`` (:func:`encode_sub_batches`).
    A side without padding runs the padded forward. ``executed`` sums the FLOPs of the layouts that ran with
    gradients (``sequence_flops`` per row at the row's width), for the run record; :meth:`restore` gives the
    model its own attention back after training.
    """

    def __init__(self, planner: Callable[[list[int]], list[list[int]]], sequence_flops: Callable[[int], float],
                 *, pack: bool = True, varlen: bool = True) -> None:
        self.planner = planner
        self.sequence_flops = sequence_flops
        self.pack = pack
        self.packs: bool | None = None  # None until checked on the first batch
        self.use_varlen = varlen and pack
        self.varlen: bool | None = None  # None until checked on the first batch
        self._model: Any = None
        self._before = ""
        self.executed = 0.0
        self.layouts: dict[str, int] = {}

    def restore(self) -> None:
        """Give the model back its own attention implementation (after training; varlen stays on until then,
        since gradient-checkpoint recomputation replays the layers during the backward pass)."""
        if self._model is not None:
            from st_recipe.training import varlen

            varlen.disable(self._model, self._before)
            self._model = None

    def _count(self, layout: str, flops: float) -> None:
        import torch

        if torch.is_grad_enabled():  # GradCache's no-grad pass is not counted (as in the padded meter)
            self.executed += flops
            self.layouts[layout] = self.layouts.get(layout, 0) + 1

    def _check_varlen(self, st_model: Any, features: dict[str, Any]) -> None:
        from st_recipe.training import varlen

        before = varlen.varlen_works(st_model, features)
        self.varlen = before is not None
        if self.varlen:
            self._model, self._before = st_model[0].auto_model, before

    def pop_executed(self) -> float:
        """FLOPs run since the last call."""
        value, self.executed = self.executed, 0.0
        return value

    def encode(self, st_model: Any, original: Callable[[dict[str, Any]], dict[str, Any]], embed: Any,
               features: dict[str, Any]) -> dict[str, Any]:
        mask = features.get("attention_mask")
        if mask is None or mask.dim() != 2:
            return original(features)
        rows, width = mask.shape
        lengths_t = mask.sum(dim=1)
        lengths = [int(x) for x in lengths_t.tolist()]
        right = right_padded(mask, lengths_t)
        if right and min(lengths) == width:
            self._count("padded (no padding)", rows * self.sequence_flops(width))
            return original(features)
        real_tokens_only = sum(self.sequence_flops(t) for t in lengths)
        if self.use_varlen and right and rows > 1 and not runs_flash_varlen(st_model):
            if self.varlen is None:
                self._check_varlen(st_model, features)
            if self.varlen:
                from st_recipe.training.varlen import encode_flat

                self._count("flat stream (varlen)", real_tokens_only)
                return encode_flat(st_model, features)
        if self.pack and self.packs is None and packable_bins(mask) is not None:
            # Checked on the first batch that has something to pack (one that packs nothing proves nothing).
            self.packs = packing_works(st_model, features)
        if self.pack and self.packs:
            if runs_flash_varlen(st_model) and right:
                # flash-attention: one row of every text, attention per text (varlen), no padding at all.
                self._count("one row (varlen)", real_tokens_only)
                return encode_packed(st_model, features, [list(range(rows))], row_width=sum(lengths))
            bins = packable_bins(mask)
            if bins is not None and len(bins) <= (1 - MIN_ROW_SAVING) * rows:
                self._count("packed", len(bins) * self.sequence_flops(width))
                return encode_packed(st_model, features, bins)
        if right:
            groups = self.planner(lengths)
            self._count("sub-batches", sum(len(g) * self.sequence_flops(max(lengths[i] for i in g)) for g in groups))
        else:
            self._count("padded", rows * self.sequence_flops(width))
        return encode_sub_batches(original, features, self.planner, embed)


@contextlib.contextmanager
def padding_free(st_model: Any, strategy: PaddingFree | Callable[[list[int]], list[list[int]]]) -> Iterator[None]:
    """Within the block, calling ``st_model`` on a padded batch encodes it padding-free.

    ``strategy`` is a :class:`PaddingFree` or a bare sub-batch planner. The instance's ``forward`` is
    shadowed and restored afterwards, so nothing of it is ever saved.
    """
    original = type(st_model).forward.__get__(st_model)
    had_own = "forward" in vars(st_model)
    previous = vars(st_model).get("forward")
    embed = input_embedding(st_model)
    if not isinstance(strategy, PaddingFree):
        strategy = PaddingFree(strategy, float, pack=False)

    def forward(features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if kwargs:
            return original(features, **kwargs)
        return strategy.encode(st_model, original, embed, features)

    st_model.forward = forward
    try:
        yield
    finally:
        if had_own:
            st_model.forward = previous
        else:
            del st_model.forward


def padding_free_strategy(profile: CostProfile, overhead_tokens: float, *, pack: bool = True,
                          varlen: bool = True) -> Any:
    """The default padding-free strategy for a model with cost ``profile``: a flat stream with attention per text,
    else packed rows, else priced sub-batches."""
    return PaddingFree(sub_batch_planner(profile, overhead_tokens), profile.sequence_flops, pack=pack, varlen=varlen)


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
