"""Held-out pairs: which ones, and the contrastive scores a run reports on them before and after training."""

from __future__ import annotations

from typing import Any

from st_recipe.run import HeldoutScore

HELDOUT_PAIRS = 500


def split_heldout(data: Any, source: str) -> tuple[Any, Any]:
    """Training pairs and held-out pairs (the builtin set has its own fixed test split)."""
    from st_recipe.data import BUILTIN, load_pairs

    if source in (None, "", BUILTIN):
        return data, load_pairs(BUILTIN, split="test")
    n = min(HELDOUT_PAIRS, max(2, len(data) // 20))
    if len(data) - n < 2:
        return data, None
    # The held-out count in the name, so "only 3 pairs from x.jsonl" says where the other rows went.
    train = data.take(range(n, len(data)), source=f"{data.source} (after {n} held out for scoring)")
    held = data.take(range(n), source=data.source + " (held out)")
    train.stats = held.stats = data.stats
    return train, held


def heldout_scores(model: Any, held: Any, temperature: float, batch_size: int = 64) -> HeldoutScore:
    """Symmetric InfoNCE loss and top-1 retrieval accuracy on held-out pairs (in-set negatives)."""
    import torch

    # sentence-transformers' encode already sorts texts by length; packing them on top measured 0.76-0.79x of it
    # (bench/results/padding_free.md, part 3), so encoding stays padded.
    from st_recipe.evaluation.distinct import DistinctTexts

    distinct = DistinctTexts()

    def encode(texts: list[str]) -> Any:
        return model.encode(texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True)

    anchors = distinct.encode(held.anchors, encode)
    positives = distinct.encode(held.positives, encode)
    scores = anchors @ positives.T / temperature
    labels = torch.arange(len(anchors), device=scores.device)
    loss = (torch.nn.functional.cross_entropy(scores, labels) + torch.nn.functional.cross_entropy(scores.T, labels)) / 2
    acc = (scores.argmax(dim=1) == labels).float().mean()
    return HeldoutScore(infonce=round(float(loss), 5), top1_accuracy=round(float(acc), 5), pairs=len(anchors))
