"""Tests for st_recipe.data.pairs: PairData, check_enough, column picking, cleaning, shuffling and limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from st_recipe.data import PairData, check_enough, load_pairs
from st_recipe.data.pairs import pick_columns
from st_recipe.errors import StRecipeError
from tests.data.kit import as_set, error_text, write_jsonl


def test_local_shuffle_and_limit(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"anchor": f"anchor {i}", "positive": f"positive {i}"} for i in range(50)])
    a, b, c = load_pairs(str(path), seed=3), load_pairs(str(path), seed=3), load_pairs(str(path), seed=4)
    assert a.anchors == b.anchors and a.anchors != c.anchors and as_set(a) == as_set(c)
    assert a.anchors != [f"anchor {i}" for i in range(50)]
    few = load_pairs(str(path), seed=3, limit=7)
    assert few.anchors == a.anchors[:7] and len(few) == 7 and few.stats.over_limit == 43


def test_bge_layout_uses_the_first_positive(tmp_path: Path) -> None:
    rows = [
        {"query": "what is bge", "pos": ["BGE is an embedding model family.", "second positive"], "neg": ["no"]},
        {"query": "second query", "pos": ["Only one positive here."], "neg": []},
        {"query": "query with no positive", "pos": [], "neg": ["x"]},
    ]
    loaded = load_pairs(str(write_jsonl(tmp_path / "bge.jsonl", rows)))
    assert as_set(loaded) == {
        ("what is bge", "BGE is an embedding model family."),
        ("second query", "Only one positive here."),
    }
    assert loaded.stats.skipped_malformed == 1 and loaded.stats.rows_read == 3


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("query", "positive"), ("query", "positive")),
        (("sentence1", "sentence2"), ("sentence1", "sentence2")),
        (("text1", "text2"), ("text1", "text2")),
        (("Query", "Positive"), ("Query", "Positive")),
        (("question", "answer"), ("question", "answer")),
    ],
)
def test_column_autodetect(names: tuple[str, str], expected: tuple[str, str], tmp_path: Path) -> None:
    rows = [{names[0]: f"left text {i}", names[1]: f"right text {i}", "label": 1} for i in range(3)]
    loaded = load_pairs(str(write_jsonl(tmp_path / "p.jsonl", rows)))
    assert as_set(loaded) == {(f"left text {i}", f"right text {i}") for i in range(3)}
    assert pick_columns([*names, "label"], None, None, "x") == expected


def test_column_flags(tmp_path: Path) -> None:
    rows = [{"title": f"title {i}", "body": f"body {i}", "positive": f"pos {i}"} for i in range(4)]
    path = str(write_jsonl(tmp_path / "p.jsonl", rows))
    both = load_pairs(path, anchor_column="title", positive_column="body")
    assert as_set(both) == {(f"title {i}", f"body {i}") for i in range(4)}
    # One flag: the partner comes from the known layouts ("positive" here).
    one = load_pairs(path, anchor_column="title")
    assert as_set(one) == {(f"title {i}", f"pos {i}") for i in range(4)}
    with pytest.raises(StRecipeError) as exc:
        load_pairs(path, anchor_column="headline", positive_column="body")
    msg = error_text(exc)
    assert "headline" in msg and "title, body, positive" in msg
    with pytest.raises(StRecipeError, match="both 'body'"):
        load_pairs(path, anchor_column="body", positive_column="body")


def test_empty_texts_are_counted_then_rejected_when_most(tmp_path: Path) -> None:
    rows = [{"anchor": f"a{i}", "positive": f"p{i}"} for i in range(6)]
    rows += [{"anchor": "   ", "positive": "p"}, {"anchor": "a", "positive": ""}, {"anchor": None, "positive": "x"}]
    rows += [{"anchor": "a0", "positive": "p0"}]  # an exact duplicate
    loaded = load_pairs(str(write_jsonl(tmp_path / "some.jsonl", rows)))
    s = loaded.stats
    assert (s.rows_read, s.rows_kept, s.skipped_empty, s.duplicates_removed) == (10, 6, 3, 1)
    mostly = [{"anchor": "", "positive": "p"}] * 3 + [{"anchor": "a", "positive": "p"}] * 2
    with pytest.raises(StRecipeError) as exc:
        load_pairs(str(write_jsonl(tmp_path / "mostly.jsonl", mostly)))
    msg = error_text(exc)
    assert "3 of 5 rows" in msg and "line 1" in msg and "empty" in msg


def test_check_enough(tmp_path: Path) -> None:
    pairs = load_pairs(str(write_jsonl(tmp_path / "p.jsonl", [{"anchor": f"a{i}", "positive": f"p{i}"} for i in range(5)])))
    check_enough(pairs, 5)
    with pytest.raises(StRecipeError) as exc:
        check_enough(pairs, 8)
    msg = error_text(exc)
    assert "only 5 pairs" in msg and "needs at least 8" in msg and "p.jsonl" in msg
    with pytest.raises(StRecipeError, match="at least 1"):
        check_enough(pairs, 0)
    with pytest.raises(StRecipeError, match="limit"):
        load_pairs("builtin", limit=0)


def test_pairdata_basics() -> None:
    pairs = PairData(["a", "b"], ["x", "y"], "mem")
    assert len(pairs) == 2 and list(pairs) == [("a", "x"), ("b", "y")] and "2 pairs" in repr(pairs)
    with pytest.raises(StRecipeError, match="2 anchors but 1 positives"):
        PairData(["a", "b"], ["x"])
