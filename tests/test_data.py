"""Tests for st_recipe.data: the builtin pairs, local files, the Hub path (monkeypatched) and bad input."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from st_recipe import data
from st_recipe.data import PairData, check_enough, load_pairs
from st_recipe.errors import StRecipeError

PAIRS = [
    ("What is the capital of France?", "Paris is the capital and largest city of France."),
    ("How do plants make food?", "Plants use photosynthesis, turning light, water and CO2 into sugar."),
    ('A text with "quotes", commas, and a tab\there', "A positive with a newline\nin the middle."),
    ("Ünïcödé is fine in user data", "Les données peuvent être en français."),
    ("Short question five", "Answer five, with some more words."),
    ("Short question six", "Answer six, with some more words."),
    ("Odd line breaks\u2028inside\x85a text", "CRLF\r\nand a form\x0cfeed stay in the text."),
]


@pytest.fixture(scope="session")
def builtin_train() -> PairData:
    return load_pairs()


@pytest.fixture(scope="session")
def builtin_test() -> PairData:
    return load_pairs("builtin", split="test")


def as_set(pairs: PairData) -> set[tuple[str, str]]:
    return set(zip(pairs.anchors, pairs.positives))


def error_text(excinfo: pytest.ExceptionInfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


# ---------------------------------------------------------------------------------------------------
# builtin


TRAIN_PAIRS = 7564  # v1's split sizes, fixed in the shipped file
TEST_PAIRS = 500


def builtin_file() -> Path:
    return Path(data.__file__).with_name(f"builtin_pairs_{data.BUILTIN_VERSION}.jsonl.gz")


def builtin_rows() -> list[dict]:
    raw = gzip.decompress(builtin_file().read_bytes())
    return [json.loads(line) for line in raw.decode("utf-8").split("\n") if line]


def test_builtin_file_matches_its_hash_and_manifest() -> None:
    packed = builtin_file().read_bytes()
    digest = hashlib.sha256(gzip.decompress(packed)).hexdigest()
    assert digest == data.BUILTIN_SHA256
    assert data.BUILTIN_VERSION == "v1"
    # gzip header: no FNAME flag and mtime 0, so rewriting the file gives the same bytes.
    assert packed[:2] == b"\x1f\x8b" and packed[3] & 0x08 == 0 and packed[4:8] == b"\0\0\0\0"
    manifest = builtin_file().with_name("BUILTIN_PAIRS.md").read_text(encoding="utf-8")
    assert digest in manifest and f"# Builtin pairs, {data.BUILTIN_VERSION}" in manifest
    assert f"{TRAIN_PAIRS:,} train + {TEST_PAIRS} test" in manifest


def test_builtin_file_layout_and_fixed_counts() -> None:
    rows = builtin_rows()
    assert all(list(r) == ["split", "anchor", "positive", "source"] for r in rows)
    splits = [r["split"] for r in rows]
    assert splits == ["train"] * TRAIN_PAIRS + ["test"] * TEST_PAIRS
    sources = {r["source"] for r in rows}
    assert "stdlib" in sources and "numpy" in sources and len(sources) == 11
    assert len(load_pairs()) == TRAIN_PAIRS and len(load_pairs(split="test")) == TEST_PAIRS


def test_packaging_ships_the_builtin_files() -> None:
    import tomllib

    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = config["tool"]["setuptools"]["package-data"]["st_recipe.data"]
    assert builtin_file().name in shipped and "BUILTIN_PAIRS.md" in shipped


def test_builtin_is_the_default(builtin_train: PairData, builtin_test: PairData) -> None:
    assert builtin_train.source == "builtin:train" and builtin_test.source == "builtin:test"
    assert load_pairs(None).anchors == builtin_train.anchors
    assert load_pairs("builtin").anchors == builtin_train.anchors
    assert load_pairs(" BuiltIn ").positives == builtin_train.positives
    for pairs, n in ((builtin_train, TRAIN_PAIRS), (builtin_test, TEST_PAIRS)):
        assert pairs.stats.as_dict() == {
            "rows_read": n, "rows_kept": n, "skipped_empty": 0, "skipped_malformed": 0,
            "duplicates_removed": 0, "over_limit": 0,
        }


def test_builtin_train_and_test_share_no_text(builtin_train: PairData, builtin_test: PairData) -> None:
    train_texts = set(builtin_train.anchors) | set(builtin_train.positives)
    test_texts = set(builtin_test.anchors) | set(builtin_test.positives)
    assert not train_texts & test_texts
    # No text occurs twice anywhere, in either role (the miner dedupes ignoring case and spacing).
    texts = [t for pairs in (builtin_train, builtin_test) for t in (*pairs.anchors, *pairs.positives)]
    keys = [" ".join(t.lower().split()) for t in texts]
    assert len(keys) == len(set(keys)) == 2 * (TRAIN_PAIRS + TEST_PAIRS)


def test_builtin_texts_look_like_english_prose(builtin_train: PairData) -> None:
    for anchor, positive in list(builtin_train)[:500]:
        assert 4 <= len(anchor.split()) <= 60 and anchor[0].isalnum(), anchor
        assert len(positive.split()) >= 8 and len(positive) <= 1500, positive
        assert ">>>" not in positive and "``" not in positive and "\n" not in positive
        assert anchor.isascii() or sum(not c.isascii() for c in anchor) <= 0.03 * len(anchor)
    # A docstring everybody has: json.dumps in the standard library.
    pairs = as_set(builtin_train) | as_set(load_pairs(split="test"))
    dumps = [p for a, p in pairs if a == "Serialize obj to a JSON formatted str."]
    assert len(dumps) == 1 and dumps[0].startswith("If skipkeys is true")
    # Summaries end like sentences more often than not; a template would not vary this much.
    enders = sum(a.endswith((".", "!", "?")) for a in builtin_train.anchors)
    assert enders > 0.8 * len(builtin_train)
    assert len({a.split()[0] for a in builtin_train.anchors}) > 500


def test_builtin_shuffle_follows_seed(builtin_train: PairData) -> None:
    again = load_pairs(seed=0)
    assert again.anchors == builtin_train.anchors and again.positives == builtin_train.positives
    other = load_pairs(seed=1)
    assert other.anchors != builtin_train.anchors
    assert as_set(other) == as_set(builtin_train)
    assert load_pairs(seed=1).anchors == other.anchors and load_pairs(seed=1).positives == other.positives
    file_order = [r["anchor"] for r in builtin_rows() if r["split"] == "train"]
    assert builtin_train.anchors != file_order and sorted(builtin_train.anchors) == sorted(file_order)
    few = load_pairs(limit=10, seed=1)
    assert few.anchors == other.anchors[:10] and few.stats.rows_kept == 10
    assert few.stats.over_limit == TRAIN_PAIRS - 10 and few.stats.rows_read == TRAIN_PAIRS
    test_a, test_b = load_pairs(split="test", seed=5), load_pairs(split="test", seed=6)
    assert test_a.anchors != test_b.anchors and as_set(test_a) == as_set(test_b)


def test_builtin_is_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    load_pairs(split="test")

    def fail(*args, **kwargs):
        raise AssertionError("the builtin file was read again")

    monkeypatch.setattr(data, "gzip", SimpleNamespace(decompress=fail))
    assert len(load_pairs()) == TRAIN_PAIRS and len(load_pairs(split="test", seed=3)) == TEST_PAIRS


@pytest.fixture
def builtin_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Points the loader at a copy of the shipped file (returned) with an empty in-process memo."""
    copy = tmp_path / builtin_file().name
    copy.write_bytes(builtin_file().read_bytes())
    monkeypatch.setattr(data, "_builtin_path", lambda: copy)
    monkeypatch.setattr(data, "_MEMO", {})
    return copy


def test_builtin_copy_loads_like_the_original(builtin_copy: Path, builtin_train: PairData) -> None:
    assert load_pairs().anchors == builtin_train.anchors


def test_corrupted_builtin_file_is_one_line_error(builtin_copy: Path) -> None:
    packed = bytearray(builtin_copy.read_bytes())
    packed[len(packed) // 2] ^= 0xFF
    builtin_copy.write_bytes(bytes(packed))
    with pytest.raises(StRecipeError) as exc:
        load_pairs()
    msg = error_text(exc)
    assert "corrupted" in msg and builtin_copy.name in msg and "reinstall" in msg


def test_altered_builtin_pairs_fail_the_hash(builtin_copy: Path) -> None:
    # Valid gzip of changed content: only the sha256 check can notice.
    raw = gzip.decompress(builtin_copy.read_bytes()).replace(b"Serialize obj", b"Serialise obj", 1)
    builtin_copy.write_bytes(gzip.compress(raw, mtime=0))
    with pytest.raises(StRecipeError) as exc:
        load_pairs(split="test")
    msg = error_text(exc)
    assert "corrupted" in msg and data.BUILTIN_SHA256 in msg and hashlib.sha256(raw).hexdigest() in msg


def test_missing_builtin_file_is_one_line_error(builtin_copy: Path) -> None:
    builtin_copy.unlink()
    with pytest.raises(StRecipeError) as exc:
        load_pairs()
    msg = error_text(exc)
    assert "missing" in msg and "reinstall" in msg


@pytest.mark.parametrize("split", ["validation", "dev"])
def test_builtin_rejects_unknown_split(split: str) -> None:
    with pytest.raises(StRecipeError, match="'train' and 'test'"):
        load_pairs("builtin", split=split)


# ---------------------------------------------------------------------------------------------------
# local files


def write_jsonl(path: Path, rows: list[dict], raw_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    for index, text in (raw_lines or {}).items():
        lines.insert(index, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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
    assert data._pick_columns([*names, "label"], None, None, "x") == expected


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


# ---------------------------------------------------------------------------------------------------
# bad input


def test_missing_file_and_unknown_sources(tmp_path: Path) -> None:
    with pytest.raises(StRecipeError, match="not found"):
        load_pairs(str(tmp_path / "nope.jsonl"))
    with pytest.raises(StRecipeError, match="not found"):
        load_pairs("./data/pairs")
    with pytest.raises(StRecipeError) as exc:
        load_pairs("nonsense")
    assert "builtin" in error_text(exc) and "Hub dataset id" in error_text(exc)
    with pytest.raises(StRecipeError, match="directory"):
        load_pairs(str(tmp_path))
    (tmp_path / "pairs.txt").write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(StRecipeError, match="unsupported file type"):
        load_pairs(str(tmp_path / "pairs.txt"))


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
    with pytest.raises(StRecipeError, match="invalid JSON on line 2"):
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


# ---------------------------------------------------------------------------------------------------
# Hub ids (datasets.load_dataset monkeypatched; nothing leaves the machine)


class CountingStream:
    """Stands in for a streaming IterableDataset and counts how many rows were pulled."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.pulled = 0
        self.column_names = list(rows[0])

    def __iter__(self):
        for row in self.rows:
            self.pulled += 1
            yield row


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch):
    import datasets

    calls: list[dict] = []
    rows = [{"query": f"hub query {i}", "pos": [f"hub positive {i}"], "neg": []} for i in range(40)]

    def fake_load_dataset(path, name=None, *, split=None, streaming=False, **kwargs):
        calls.append({"path": path, "name": name, "split": split, "streaming": streaming})
        ds = datasets.Dataset.from_list(rows)
        return ds.to_iterable_dataset() if streaming else ds

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return calls, rows


def test_hub_streams_by_default(fake_hub) -> None:
    calls, rows = fake_hub
    loaded = load_pairs("org/pairs")
    assert calls == [{"path": "org/pairs", "name": None, "split": "train", "streaming": True}]
    assert as_set(loaded) == {(r["query"], r["pos"][0]) for r in rows}
    assert loaded.source == "hub:org/pairs:train"


def test_hub_config_split_and_limit(fake_hub) -> None:
    calls, rows = fake_hub
    loaded = load_pairs("org/pairs:english:validation", limit=5, seed=1)
    assert calls[-1] == {"path": "org/pairs", "name": "english", "split": "validation", "streaming": True}
    # Streaming cannot sample, so the limit keeps the first rows (in a seeded order).
    assert as_set(loaded) == {(r["query"], r["pos"][0]) for r in rows[:5]}
    load_pairs("org/pairs::dev")
    assert calls[-1]["name"] is None and calls[-1]["split"] == "dev"
    loaded = load_pairs("org/pairs", streaming=False, limit=3, split="test")
    assert calls[-1]["streaming"] is False and calls[-1]["split"] == "test" and len(loaded) == 3


def test_hub_limit_stops_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    stream = CountingStream([{"anchor": f"a{i}", "positive": f"p{i}"} for i in range(1000)])
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: stream)
    assert len(load_pairs("org/big", limit=10)) == 10
    assert stream.pulled == 10


def test_hub_wrong_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: CountingStream([{"premise": "a", "label": 1}]))
    with pytest.raises(StRecipeError) as exc:
        load_pairs("org/nli")
    assert "org/nli" in error_text(exc) and "columns found: premise, label" in error_text(exc)


def test_hub_unreachable_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'org/pairs' on the Hub (LocalEntryNotFoundError)\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(StRecipeError) as exc:
        load_pairs("org/pairs:cfg")
    msg = error_text(exc)
    assert "'org/pairs:cfg'" in msg and "ConnectionError" in msg and "local file" in msg and "'builtin'" in msg
    assert "more detail" not in msg

    class Broken:
        column_names = ["anchor", "positive"]

        def __iter__(self):
            yield {"anchor": "a", "positive": "p"}
            raise TimeoutError("read timed out")

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: Broken())
    with pytest.raises(StRecipeError, match="TimeoutError: read timed out.*'builtin'"):
        load_pairs("org/pairs")


def test_hub_id_forms() -> None:
    match = data._HUB_ID.match
    assert match("org/name")["repo"] == "org/name"
    assert match("org/name:cfg")["config"] == "cfg"
    assert match("org/name:cfg:train[:10%]")["split"] == "train[:10%]"
    assert match("name") is None and match("a/b/c") is None


def test_import_stays_light() -> None:
    import subprocess

    code = "import st_recipe.data, sys; print(sorted(m for m in ('datasets', 'pandas', 'pyarrow', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_module_documents_the_batch_sampler() -> None:
    assert data.BATCH_SAMPLER == "no_duplicates"
    assert "NO_DUPLICATES" in (data.__doc__ or "")
    assert re.search(r"first\*? positive", data.__doc__ or "")
