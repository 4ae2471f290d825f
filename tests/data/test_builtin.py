"""Tests for st_recipe.data.builtin: the shipped pairs, their hash check, splits and in-process memo."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from st_recipe import data
from st_recipe.data import PairData, builtin, load_pairs
from st_recipe.errors import StRecipeError
from tests.data.kit import as_set, error_text


@pytest.fixture(scope="session")
def builtin_train() -> PairData:
    return load_pairs()


@pytest.fixture(scope="session")
def builtin_test() -> PairData:
    return load_pairs("builtin", split="test")


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

    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
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
            "duplicates_removed": 0, "over_limit": 0, "with_negatives": 0, "few_negatives": 0,
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

    monkeypatch.setattr(builtin, "gzip", SimpleNamespace(decompress=fail))
    assert len(load_pairs()) == TRAIN_PAIRS and len(load_pairs(split="test", seed=3)) == TEST_PAIRS


@pytest.fixture
def builtin_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Points the loader at a copy of the shipped file (returned) with an empty in-process memo."""
    copy = tmp_path / builtin_file().name
    copy.write_bytes(builtin_file().read_bytes())
    monkeypatch.setattr(builtin, "_builtin_path", lambda: copy)
    monkeypatch.setattr(builtin, "_MEMO", {})
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
