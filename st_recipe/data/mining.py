"""Hard-negative mining: for each pair, the passages of other pairs the model finds most similar to its anchor.

A thin layer over sentence-transformers' ``mine_hard_negatives`` (exact search, the pairs' own positives as the
corpus, ``n-tuple`` output) that keeps st-recipe's :class:`PairData` order, meters the encoding FLOPs and reports
what it kept. The default filter is positive-aware: a candidate scoring at or above the pair's own positive
(``absolute_margin`` 0) is skipped as a likely false negative. NV-Retriever's stricter TopK-PercPos rule
(``relative_margin`` 0.05: below 95 % of the positive's score, Moreira et al. 2024) is calibrated on trained
embedders; on an untrained mean-pooled decoder, whose cosines all sit near 1, it rejected 96 % of the Lee
news pairs' candidates (bench/results/quality.md), so it is opt-in.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterator

from st_recipe.data.pairs import PairData, check_negative_count
from st_recipe.errors import StRecipeError

SAMPLING = ("top", "random")
# Candidates looked at per pair when the user gives no --range-max. sentence-transformers' own default (10 per
# negative) left 713 of 1,087 Lee pairs without a negative: an untrained decoder ranks its true positive below
# ten others for most pairs, and the margin rejects every candidate above the positive.
DEFAULT_CANDIDATES = 100


@dataclass
class MiningReport:
    """What a mining pass did: settings, pairs in and with enough negatives, encoding cost and time."""

    negatives_per_pair: int
    pairs: int
    pairs_with_negatives: int
    range_min: int
    range_max: int | None
    absolute_margin: float | None
    relative_margin: float | None
    sampling: str
    texts_encoded: int
    tokens_encoded: int
    forward_flops: float
    wall_time_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for the run record)."""
        return asdict(self)

    @property
    def coverage(self) -> float:
        """The share of pairs that got all their negatives."""
        return self.pairs_with_negatives / self.pairs if self.pairs else 0.0

    def shortfall(self) -> str | None:
        """A one-line explanation when fewer than half the pairs got their negatives, else None."""
        if self.coverage >= 0.5:
            return None
        rules = [f"absolute margin {self.absolute_margin:g}" if self.absolute_margin is not None else "",
                 f"relative margin {self.relative_margin:g}" if self.relative_margin else "",
                 f"range {self.range_min}..{self.range_max}" if self.range_min or self.range_max else ""]
        return (f"mining found {self.negatives_per_pair} negative(s) for only {self.pairs_with_negatives:,} of "
                f"{self.pairs:,} pairs under its filters ({', '.join(r for r in rules if r) or 'none'}); loosen them "
                "(st-recipe mine --absolute-margin off --relative-margin 0, a larger --range-max) or ask for fewer")

    def summary(self) -> str:
        """One line for the terminal."""
        return (f"mined {self.negatives_per_pair} hard negative(s) for {self.pairs_with_negatives:,} of {self.pairs:,} "
                f"pairs ({self.texts_encoded:,} texts encoded, {self.forward_flops:.3g} FLOP, {self.wall_time_s:.0f} s)")


def check_mining(k: Any, range_min: Any = 0, range_max: Any = None, relative_margin: Any = None,
                 sampling: str = "top", absolute_margin: Any = 0.0) -> None:
    """One-line errors for mining settings (checked before any model is loaded)."""
    check_negative_count(k, "--num-negatives", minimum=1)
    if isinstance(range_min, bool) or not isinstance(range_min, int) or range_min < 0:
        raise StRecipeError(f"--range-min must be an integer >= 0, not {range_min!r}")
    if range_max is not None and (isinstance(range_max, bool) or not isinstance(range_max, int)
                                  or range_max < range_min + k):
        raise StRecipeError(f"--range-max must be an integer >= range-min + num-negatives ({range_min + k}), "
                            f"not {range_max!r}")
    if relative_margin is not None and not (isinstance(relative_margin, (int, float)) and 0 <= relative_margin < 1):
        raise StRecipeError(f"--relative-margin must be in [0, 1), not {relative_margin!r}")
    if absolute_margin is not None and not (isinstance(absolute_margin, (int, float)) and 0 <= absolute_margin < 2):
        raise StRecipeError(f"--absolute-margin must be in [0, 2) (a cosine gap), not {absolute_margin!r}")
    if sampling not in SAMPLING:
        raise StRecipeError(f"--sampling must be top or random, not {sampling!r}")


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Silence tqdm while mining: ``mine_hard_negatives`` passes show_progress_bar=True whatever ``verbose`` says."""
    from tqdm import std

    original = std.tqdm.__init__

    def silent(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        original(self, *args, **kwargs)

    std.tqdm.__init__ = silent  # type: ignore[method-assign]
    try:
        yield
    finally:
        std.tqdm.__init__ = original  # type: ignore[method-assign]


def mine_negatives(model: Any, pairs: PairData, k: int, *, range_min: int = 0, range_max: int | None = None,
                   absolute_margin: float | None = 0.0, relative_margin: float | None = None, sampling: str = "top",
                   batch_size: int = 32, profile: Any = None, progress: bool = False) -> tuple[PairData, MiningReport]:
    """``pairs`` with up to ``k`` mined negatives each (pairs where fewer than ``k`` pass the filters get none).

    ``progress`` shows the encoding and scoring bars (off by default: training and ``mine --quiet`` stay silent).

    ``model`` is a SentenceTransformer; its stored ``query``/``document`` prompts are used as in training.
    ``profile`` (a :class:`~st_recipe.costing.flops.CostProfile` of ``model``) meters the encoding's forward FLOPs.
    """
    check_mining(k, range_min, range_max, relative_margin, sampling, absolute_margin)
    if len(pairs) < k + 1:
        raise StRecipeError(f"mining {k} negatives needs at least {k + 1} pairs, not {len(pairs)}")
    from sentence_transformers.util import mine_hard_negatives

    started = time.time()
    if range_max is None:
        range_max = max(range_min + k, min(len(pairs) - 1, range_min + DEFAULT_CANDIDATES + k))
    prompts = getattr(model, "prompts", None) or {}
    dataset = pairs.to_dataset()
    with _on_accelerator(model), (contextlib.nullcontext() if progress else _no_progress_bars()):
        mined = mine_hard_negatives(
            dataset, model, anchor_column_name="anchor", positive_column_name="positive", num_negatives=k,
            range_min=range_min, range_max=range_max, relative_margin=relative_margin or None,
            absolute_margin=absolute_margin, sampling_strategy=sampling, output_format="n-tuple",
            batch_size=batch_size, use_faiss=False, verbose=False, query_prompt=prompts.get("query"),
            corpus_prompt=prompts.get("document"))
    found: dict[tuple[str, str], list[str]] = {}
    for row in mined:
        found.setdefault((row["anchor"], row["positive"]), [row[f"negative_{j}"] for j in range(1, k + 1)])
    out = pairs.take(range(len(pairs)))
    out.negatives = [found.get((a, p), []) for a, p in zip(pairs.anchors, pairs.positives)]
    out.stats.with_negatives = sum(1 for n in out.negatives if n)
    texts = {"query": sorted(set(pairs.anchors)), "document": sorted(set(pairs.positives))}
    tokens, flops = _encoding_cost(model, texts, prompts, profile)
    report = MiningReport(negatives_per_pair=k, pairs=len(pairs), pairs_with_negatives=out.stats.with_negatives,
                          range_min=range_min, range_max=range_max, absolute_margin=absolute_margin,
                          relative_margin=relative_margin,
                          sampling=sampling, texts_encoded=sum(len(t) for t in texts.values()), tokens_encoded=tokens,
                          forward_flops=flops, wall_time_s=round(time.time() - started, 2))
    return out, report


@contextlib.contextmanager
def _on_accelerator(model: Any) -> Iterator[None]:
    """Encode on the GPU when there is one (st-recipe builds encoders on the CPU), then put the model back."""
    import torch

    if not torch.cuda.is_available() or next(model.parameters()).device.type == "cuda":
        yield
        return
    model.to("cuda")
    try:
        yield
    finally:
        model.to("cpu")


def _encoding_cost(model: Any, texts: dict[str, list[str]], prompts: dict[str, str], profile: Any) -> tuple[int, float]:
    """Tokens and forward FLOPs of encoding each distinct text once (with its prompt, at the model's length)."""
    tok = model[0].tokenizer
    tokens, flops = 0, 0.0
    for kind, items in texts.items():
        prompt = prompts.get(kind, "")
        for start in range(0, len(items), 1024):
            enc = tok([prompt + t for t in items[start:start + 1024]], truncation=True,
                      max_length=model.max_seq_length, padding=False)
            for ids in enc["input_ids"]:
                tokens += len(ids)
                if profile is not None:
                    flops += profile.forward_flops(len(ids))
    return tokens, flops
