"""Each distinct text is encoded once: same embeddings and scores as encoding every text, far fewer texts encoded."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from st_recipe.evaluation import evaluate
from st_recipe.evaluation.distinct import DistinctTexts, encode_distinct
from tests import kit


def test_cache_encodes_each_text_once_per_setting_and_keeps_order() -> None:
    seen: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        seen.append(list(texts))
        return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)

    cache = DistinctTexts()
    out = cache.encode(["b", "a", "b", "cc"], encode)
    assert seen == [["b", "a", "cc"]]
    assert out.tolist() == [[1, 98], [1, 97], [1, 98], [2, 99]]
    again = cache.encode(["cc", "a"], encode)
    assert seen == [["b", "a", "cc"]] and again.tolist() == [[2, 99], [1, 97]]
    cache.encode(["a"], encode, setting="query")  # another prompt or side is another embedding
    assert seen[-1] == ["a"] and (cache.requested, cache.encoded) == (7, 4)


def test_encode_distinct_matches_plain_encode(tiny_encoder) -> None:
    texts = [kit.SENTENCES[i % 5] for i in range(23)]
    plain = tiny_encoder.encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(encode_distinct(tiny_encoder, texts, convert_to_numpy=True), plain, atol=1e-6, rtol=0)
    tensors = encode_distinct(tiny_encoder, texts, convert_to_tensor=True)
    np.testing.assert_allclose(tensors.numpy(), plain, atol=1e-6, rtol=0)


def _all_pairs_sts(path: Path, docs: list[str]) -> Path:
    """A Lee-shaped STS file: every pair of a few documents, so each document appears in many pairs."""
    lines = [json.dumps({"score_range": [0, 1]})]
    for k, (i, j) in enumerate(itertools.combinations(range(len(docs)), 2)):
        lines.append(json.dumps({"sentence1": docs[i], "sentence2": docs[j], "score": ((7 * k) % 11) / 10}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_sts_eval_encodes_distinct_texts_only_and_scores_exactly(
    fresh_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    docs = kit.SENTENCES[:10]
    sts = _all_pairs_sts(tmp_path / "allpairs.jsonl", docs)
    encoded: list[str] = []
    original = SentenceTransformer.encode

    def spy(self, sentences, *args, **kwargs):
        encoded.extend([sentences] if isinstance(sentences, str) else sentences)
        return original(self, sentences, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "encode", spy)
    summary = evaluate(str(fresh_run), task_files=[f"sts:{sts}"], progress=False)
    assert summary.ok
    # 45 pairs = 90 texts, 10 of them distinct: each is encoded once
    assert sorted(encoded) == sorted(docs)

    monkeypatch.setattr(SentenceTransformer, "encode", original)
    model = SentenceTransformer(str(fresh_run))
    rows = [json.loads(line) for line in sts.read_text().splitlines()[1:]]
    a = model.encode([r["sentence1"] for r in rows], normalize_embeddings=True)
    b = model.encode([r["sentence2"] for r in rows], normalize_embeddings=True)
    expected = spearmanr((a * b).sum(axis=1), [r["score"] for r in rows]).statistic
    assert summary.tasks[0].main_score == pytest.approx(expected, abs=1e-6)
