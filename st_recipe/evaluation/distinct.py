"""Encode each distinct text once: STS files repeat every document in many pairs, retrieval corpora and held-out
pairs repeat texts too, and a text's embedding does not depend on what else is in its batch."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any


class DistinctTexts:
    """A cache of embeddings keyed by (setting, text), so repeated texts are encoded once per evaluation."""

    def __init__(self) -> None:
        self._rows: dict[tuple[Hashable, str], Any] = {}
        self.requested = 0
        self.encoded = 0

    def encode(self, texts: Sequence[str], encode: Callable[[list[str]], Any], setting: Hashable = None) -> Any:
        """Embeddings of ``texts`` in order, calling ``encode`` only on texts this cache has not seen with ``setting``.

        ``encode`` takes a list of texts and returns one row per text (numpy array or torch tensor); the result is
        of the same type, stacked in the order of ``texts``.
        """
        texts = list(texts)
        self.requested += len(texts)
        todo = list(dict.fromkeys(t for t in texts if (setting, t) not in self._rows))
        if todo:
            rows = encode(todo)
            self.encoded += len(todo)
            for text, row in zip(todo, rows):
                self._rows[(setting, text)] = row
        return _stack([self._rows[(setting, t)] for t in texts], like=rows if todo else None)


def _stack(rows: list[Any], like: Any) -> Any:
    import numpy as np

    if rows and _is_tensor(rows[0]):
        import torch

        return torch.stack(rows)
    if not rows:
        return np.zeros((0, 0), dtype=np.float32) if like is None else like[:0]
    return np.stack(rows)


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch")


def encode_distinct(model: Any, texts: Sequence[str], **kwargs: Any) -> Any:
    """``model.encode(texts, **kwargs)`` that encodes each distinct text once (same rows, same order)."""
    return DistinctTexts().encode(texts, lambda todo: model.encode(todo, **kwargs))
