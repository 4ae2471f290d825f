"""Tests for st_recipe.data.hub_datasets (datasets.load_dataset monkeypatched; nothing leaves the machine)."""

from __future__ import annotations

import pytest

from st_recipe.data import load_pairs
from st_recipe.errors import StRecipeError
from tests.data.kit import as_set, error_text


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
