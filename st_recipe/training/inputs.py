"""What a run trains on: its pairs loaded and split (:func:`load_training_data`) with the recipe's hard negatives,
prompts by column, the cost of a pair, the data part of the run record."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from st_recipe.costing.flops import FlopMeter
from st_recipe.planning.recipes import PROMPT_COLUMNS, Recipe
from st_recipe.run import DataInfo
from st_recipe.training.trainer import is_main

logger = logging.getLogger("st_recipe")

SAMPLE_PAIRS_FOR_COST = 2048


def pair_cost(model: Any, data: Any, meter: FlopMeter, max_len: int, seed: int, negatives: int = 0) -> float:
    """Mean exact FLOPs of one pair (both texts and its ``negatives`` hard negatives), on a sample of the data."""
    import random

    idx = list(range(len(data)))
    random.Random(seed).shuffle(idx)
    idx = idx[:SAMPLE_PAIRS_FOR_COST]
    tok = model[0].tokenizer
    lengths = []
    # Texts as trained: with their prompts (the stored query/document prompts are prepended in training).
    prompts = getattr(model, "prompts", None) or {}
    q, d = prompts.get("query", ""), prompts.get("document", "")
    sides = [[q + data.anchors[i] for i in idx], [d + data.positives[i] for i in idx]]
    sides += [[d + data.negatives[i][j] for i in idx] for j in range(negatives)]
    for texts in sides:
        enc = tok(texts, truncation=True, max_length=max_len, padding=False)
        lengths.append([len(x) for x in enc["input_ids"]])
    return meter.batch_flops(lengths) / len(idx)


def data_info(source: str, pairs_all: Any, train_pairs: Any, held: Any, epochs: float, k: int = 0,
              mining: Any = None) -> DataInfo:
    """The ``data`` part of the run record (with the hard negatives used and how they were obtained)."""
    from st_recipe.data import BUILTIN, BUILTIN_SHA256, BUILTIN_VERSION

    builtin = source == BUILTIN
    negatives = None
    if k:
        negatives = {"per_pair": k, "source": "mined" if mining is not None else "data",
                     "pairs_left_out": train_pairs.stats.few_negatives,
                     "mining": mining.to_dict() if mining is not None else None}
    return DataInfo(source=source, train_pairs=len(train_pairs), heldout_pairs=len(held) if held is not None else 0,
                    stats=pairs_all.stats.as_dict(), epochs=round(epochs, 4),
                    version=BUILTIN_VERSION if builtin else None, sha256=BUILTIN_SHA256 if builtin else None,
                    hard_negatives=negatives)


def negatives_for_training(recipe: Recipe, pairs_all: Any, train_pairs: Any, mine: bool) -> Any:
    """Training pairs cut to the recipe's hard negatives; a one-line notice when the data has negatives left unused."""
    k = recipe.hard_negatives
    if k and not mine:
        kept = train_pairs.with_negatives(k)
        if len(kept) * 2 < len(train_pairs) and is_main():
            logger.warning("--hard-negatives %d keeps only %d of %d pairs of %s (the rest have fewer than %d negatives)",
                           k, len(kept), len(train_pairs), train_pairs.source or "the data", k)
        return kept
    if not k and getattr(pairs_all, "has_negatives", False) and is_main():
        with_n, most = pairs_all.negative_counts()
        logger.warning("%s has hard negatives (%d of %d pairs, up to %d each) that this recipe does not use; pass "
                       "--hard-negatives K to train with them", pairs_all.source, with_n, len(pairs_all), most)
    return train_pairs


def column_prompts(recipe: Recipe) -> dict[str, str]:
    """Prompts by dataset column: anchor <- query, positive and every negative_i <- document."""
    out = {PROMPT_COLUMNS[name]: text for name, text in recipe.prompts.items()}
    if "document" in recipe.prompts:
        out.update({f"negative_{j}": recipe.prompts["document"] for j in range(1, recipe.hard_negatives + 1)})
    return out


@dataclass
class TrainData:
    """A run's data: where it came from, all its pairs, the training pairs (with their hard negatives) and the
    held-out pairs (None when too few to hold any out)."""

    source: str
    pairs_all: Any
    train_pairs: Any
    held: Any


def load_training_data(recipe: Recipe, data: Any, *, anchor_column: str | None, positive_column: str | None,
                       mine_negatives: bool) -> TrainData:
    """Read ``data`` (a source name, or loaded pairs), hold some pairs out and attach the recipe's hard negatives."""
    from st_recipe.data import BUILTIN, check_enough, load_pairs
    from st_recipe.training.heldout import split_heldout

    source = str(data or BUILTIN) if isinstance(data, (str, type(None))) else getattr(data, "source", "pairs")
    pairs_all = data if hasattr(data, "anchors") else load_pairs(
        data or BUILTIN, anchor_column=anchor_column, positive_column=positive_column, seed=recipe.seed)
    train_pairs, held = split_heldout(pairs_all, source)
    train_pairs = negatives_for_training(recipe, pairs_all, train_pairs, mine_negatives)
    check_enough(train_pairs, recipe.batch_size)
    return TrainData(source, pairs_all, train_pairs, held)
