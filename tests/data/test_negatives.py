"""Hard negatives in data files: found in every layout, cleaned, kept with their pair, cut to a recipe's K."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from st_recipe import StRecipeError
from st_recipe.data import load_pairs
from st_recipe.data.pairs import negative_columns


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _by_anchor(pairs) -> dict[str, list[str]]:
    return {a: n for a, n in zip(pairs.anchors, pairs.negatives)}


def test_column_names_are_recognised_in_numeric_order():
    cols = ["anchor", "positive", "negative_10", "negative_2", "negative", "neg", "hard_negatives", "notes", "negation"]
    assert negative_columns(cols, ("anchor", "positive")) == ["hard_negatives", "neg", "negative", "negative_2",
                                                               "negative_10"]
    assert negative_columns(["query", "pos", "neg"], ("query", "pos")) == ["neg"]
    assert negative_columns(["sentence1", "sentence2"], ("sentence1", "sentence2")) == []


def test_triplets_and_n_tuples_keep_their_negatives(tmp_path):
    rows = [{"anchor": f"q{i}", "positive": f"p{i}", "negative_1": f"n{i}a", "negative_2": f"n{i}b"} for i in range(4)]
    pairs = load_pairs(str(_jsonl(tmp_path / "t.jsonl", rows)))
    assert _by_anchor(pairs) == {f"q{i}": [f"n{i}a", f"n{i}b"] for i in range(4)}
    assert pairs.stats.with_negatives == 4 and pairs.has_negatives


def test_bge_neg_lists_are_used_not_dropped(tmp_path):
    rows = [{"query": "q1", "pos": ["p1"], "neg": ["n1", " n2 ", "", "p1", "q1", "n1"]},
            {"query": "q2", "pos": ["p2"], "neg": []},
            {"query": "q3", "pos": ["p3"]}]
    pairs = load_pairs(str(_jsonl(tmp_path / "bge.jsonl", rows)))
    # stripped, empty / the positive / the anchor / repeats dropped; rows without any keep an empty list
    assert _by_anchor(pairs) == {"q1": ["n1", "n2"], "q2": [], "q3": []}
    assert pairs.negative_counts() == (1, 2)


def test_csv_and_parquet_negative_columns(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("anchor,positive,negative\nq1,p1,n1\nq2,p2,\nq3,p3,n3\n", encoding="utf-8")
    assert _by_anchor(load_pairs(str(csv))) == {"q1": ["n1"], "q2": [], "q3": ["n3"]}
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"anchor": ["q1", "q2"], "positive": ["p1", "p2"], "negatives": [["a", "b"], ["c"]]})
    pq.write_table(table, tmp_path / "t.parquet")
    assert _by_anchor(load_pairs(str(tmp_path / "t.parquet"))) == {"q1": ["a", "b"], "q2": ["c"]}


def test_pairs_without_negative_columns_have_none(tmp_path):
    pairs = load_pairs(str(_jsonl(tmp_path / "p.jsonl", [{"anchor": "a", "positive": "b"}])))
    assert pairs.negatives is None and not pairs.has_negatives


def test_with_negatives_cuts_to_k_and_counts_what_it_leaves_out(tmp_path):
    rows = [{"anchor": f"q{i}", "positive": f"p{i}", "neg": [f"n{i}_{j}" for j in range(i)]} for i in range(5)]
    pairs = load_pairs(str(_jsonl(tmp_path / "bge.jsonl", rows)))
    two = pairs.with_negatives(2)
    assert sorted(two.anchors) == ["q2", "q3", "q4"] and all(len(n) == 2 for n in two.negatives)
    assert two.stats.few_negatives == 2 and pairs.stats.few_negatives == 0  # the source's counts are untouched
    ds = two.to_dataset(2)
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    row = ds[two.anchors.index("q3")]
    assert (row["negative_1"], row["negative_2"]) == ("n3_0", "n3_1")
    with pytest.raises(StRecipeError, match=r"only 1 pairs of 5 have 4 or more hard negatives \(the most any pair has is 4\)"):
        pairs.with_negatives(4)


def test_asking_for_negatives_the_data_does_not_have_is_one_line(tmp_path):
    pairs = load_pairs(str(_jsonl(tmp_path / "p.jsonl", [{"anchor": "a", "positive": "b"}, {"anchor": "c", "positive": "d"}])))
    with pytest.raises(StRecipeError, match="has no hard negatives .* mine them with `st-recipe mine`"):
        pairs.with_negatives(1)


def test_a_negative_that_is_not_text_is_named(tmp_path):
    path = _jsonl(tmp_path / "bad.jsonl", [{"anchor": "a", "positive": "b", "negative": 3}])
    with pytest.raises(StRecipeError, match=r"line 1: column 'negative' holds int \(3\), expected text or a list"):
        load_pairs(str(path))


def test_shuffle_limit_and_heldout_split_keep_negatives_with_their_pair(tmp_path):
    from st_recipe.training.heldout import split_heldout

    rows = [{"anchor": f"q{i}", "positive": f"p{i}", "negative": f"n{i}"} for i in range(100)]
    path = _jsonl(tmp_path / "t.jsonl", rows)
    pairs = load_pairs(str(path), limit=60, seed=3)
    train, held = split_heldout(pairs, str(path))
    for part in (pairs, train, held):
        assert all(n == [a.replace("q", "n")] for a, n in zip(part.anchors, part.negatives))
    assert len(train) + len(held) == 60
