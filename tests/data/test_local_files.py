"""Tests for st_recipe.data.local_files: each local format, and one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from st_recipe.data import load_pairs
from st_recipe.errors import StRecipeError
from tests.data.kit import as_set, error_text, write_jsonl

PAIRS = [
    ("What is the capital of France?", "Paris is the capital and largest city of France."),
    ("How do plants make food?", "Plants use photosynthesis, turning light, water and CO2 into sugar."),
    ('A text with "quotes", commas, and a tab\there', "A positive with a newline\nin the middle."),
    ("Ünïcödé is fine in user data", "Les données peuvent être en français."),
    ("Short question five", "Answer five, with some more words."),
    ("Short question six", "Answer six, with some more words."),
    ("Odd line breaks\u2028inside\x85a text", "CRLF\r\nand a form\x0cfeed stay in the text."),
]


@pytest.mark.parametrize("fmt", ["jsonl", "json_array", "csv", "tsv", "parquet"])
def test_local_formats_round_trip(fmt: str, tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(PAIRS, columns=["anchor", "positive"])
    frame["extra"] = range(len(frame))
    if fmt == "jsonl":
        path = tmp_path / "pairs.jsonl"
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif fmt == "json_array":
        path = tmp_path / "pairs.json"
        frame.to_json(path, orient="records", force_ascii=False)
    elif fmt == "csv":
        path = tmp_path / "pairs.csv"
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        path = tmp_path / "pairs.tsv"
        frame.to_csv(path, sep="\t", index=False)
    else:
        path = tmp_path / "pairs.parquet"
        frame.to_parquet(path, index=False)
    loaded = load_pairs(str(path))
    assert as_set(loaded) == {(a.strip(), p.strip()) for a, p in PAIRS}
    assert loaded.stats.rows_read == len(PAIRS) and loaded.stats.rows_kept == len(PAIRS)
    ds = loaded.to_dataset()
    assert ds.column_names == ["anchor", "positive"]
    assert ds[0] == {"anchor": loaded.anchors[0], "positive": loaded.positives[0]}


@pytest.mark.parametrize("name", ["e.jsonl", "e.csv", "e.tsv", "e.parquet", "e.json"])
@pytest.mark.parametrize("content", [b"", b"  \n\n "])
def test_empty_file(name: str, content: bytes, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(StRecipeError, match="is empty"):
        load_pairs(str(path))


def test_header_only_and_empty_array(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("anchor,positive\n", encoding="utf-8")
    with pytest.raises(StRecipeError, match="header but no rows"):
        load_pairs(str(tmp_path / "h.csv"))
    (tmp_path / "a.json").write_text("[]", encoding="utf-8")
    with pytest.raises(StRecipeError, match="no rows"):
        load_pairs(str(tmp_path / "a.json"))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"anchor": "plain", "positive": "ascii"}\n{"anchor": "caf\xe9", "positive": "x"}\n')
    with pytest.raises(StRecipeError) as exc:
        load_pairs(str(path))
    msg = error_text(exc)
    assert "not UTF-8" in msg and "line 2" in msg and "0xe9" in msg


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffanchor,positive\nfirst anchor,first positive\n".encode())
    assert as_set(load_pairs(str(path))) == {("first anchor", "first positive")}


def test_malformed_json_line(tmp_path: Path) -> None:
    rows = [{"anchor": f"a{i}", "positive": f"p{i}"} for i in range(4)]
    path = write_jsonl(tmp_path / "bad.jsonl", rows, {2: '{"anchor": "broken", "positive": '})
    with pytest.raises(StRecipeError) as exc:
        load_pairs(str(path))
    assert "line 3" in error_text(exc) and "not valid JSON" in error_text(exc)
    path = write_jsonl(tmp_path / "list.jsonl", rows, {1: '["a", "b"]'})
    with pytest.raises(StRecipeError, match="line 2 is a JSON list"):
        load_pairs(str(path))
    (tmp_path / "broken.json").write_text('[{"anchor": "a",\n "positive": }]', encoding="utf-8")
    with pytest.raises(StRecipeError, match="not valid JSON .* at line 2"):
        load_pairs(str(tmp_path / "broken.json"))


def test_rows_without_the_needed_columns(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cols.jsonl", [{"left": "a", "right": "b"}])
    with pytest.raises(StRecipeError) as exc:
        load_pairs(str(path))
    msg = error_text(exc)
    assert "columns found: left, right" in msg and "--anchor-column" in msg
    rows = [{"anchor": "a0", "positive": "p0"}, {"anchor": "a1", "positive": "p1"}, {"anchor": "a2", "text": "t"}]
    with pytest.raises(StRecipeError) as exc:
        load_pairs(str(write_jsonl(tmp_path / "later.jsonl", rows)))
    msg = error_text(exc)
    assert "line 3" in msg and "'positive'" in msg and "anchor, text" in msg
    (tmp_path / "cols.csv").write_text("q,d\nx,y\n", encoding="utf-8")
    with pytest.raises(StRecipeError, match="columns found: q, d"):
        load_pairs(str(tmp_path / "cols.csv"))


def test_non_string_text(tmp_path: Path) -> None:
    rows = [{"anchor": "a0", "positive": "p0"}, {"anchor": "a1", "positive": "p1"}, {"anchor": 42, "positive": "p2"}]
    with pytest.raises(StRecipeError) as exc:
        load_pairs(str(write_jsonl(tmp_path / "n.jsonl", rows)))
    msg = error_text(exc)
    assert "line 3" in msg and "'anchor'" in msg and "int" in msg
    bge = [{"query": "q", "pos": [{"text": "nested"}]}]
    with pytest.raises(StRecipeError, match="line 1: column 'pos' holds dict"):
        load_pairs(str(write_jsonl(tmp_path / "b.jsonl", bge)))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"anchor": ["a", "b"], "positive": [1, 2]}), tmp_path / "n.parquet")
    with pytest.raises(StRecipeError, match="row 1: column 'positive' holds int"):
        load_pairs(str(tmp_path / "n.parquet"))


def test_ragged_csv_rows_are_skipped_as_malformed(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("anchor,positive\na1,p1\na2,p2,extra\na3\na4,p4\n", encoding="utf-8")
    loaded = load_pairs(str(path))
    assert as_set(loaded) == {("a1", "p1"), ("a4", "p4")}
    assert loaded.stats.skipped_malformed == 2


def test_not_parquet(tmp_path: Path) -> None:
    (tmp_path / "fake.parquet").write_text("anchor,positive\n", encoding="utf-8")
    with pytest.raises(StRecipeError, match="not a readable Parquet file"):
        load_pairs(str(tmp_path / "fake.parquet"))


def test_local_file_has_no_test_split(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"anchor": "a", "positive": "p"}])
    with pytest.raises(StRecipeError, match="no 'test' split"):
        load_pairs(str(path), split="test")
