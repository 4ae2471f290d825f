"""Local task files: specs, kinds, names, the builtin offline tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from st_recipe.evaluation import load_task_file, parse_task_file


def test_task_file_specs(tmp_path: Path, sts_file: Path, retrieval_dir: Path) -> None:
    assert parse_task_file(str(sts_file)).kind == "sts"
    assert parse_task_file(str(retrieval_dir)).kind == "retrieval"
    named = parse_task_file(f"mine=retrieval:{retrieval_dir}")
    assert (named.kind, named.name) == ("retrieval", "mine")
    data = load_task_file(parse_task_file(f"pairs=sts:{sts_file}"))
    assert data.name == "pairs" and len(data.sts["score"]) == 20 and data.score_range == (0, 5)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"queries": "tiny-retrieval/queries.jsonl", "corpus": "tiny-retrieval/corpus.jsonl",
                                "qrels": "tiny-retrieval/qrels.tsv", "name": "from-spec"}))
    data = load_task_file(parse_task_file(str(spec)))
    assert data.name == "from-spec" and len(data.queries) == 10 and len(data.corpus) == 30


def test_builtin_tasks_come_from_the_held_out_pairs_and_are_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from st_recipe.data import load_pairs

    monkeypatch.setenv("ST_RECIPE_CACHE_DIR", str(tmp_path / "cache"))
    held = load_pairs("builtin", split="test")
    train_anchors = set(load_pairs("builtin", split="train").anchors)
    sts = load_task_file(parse_task_file("builtin:sts"))
    assert sts.name == "builtin-docstring-sts" and sts.score_range == (0, 1)
    assert sorted(set(sts.sts["score"])) == [0, 1] and len(sts.sts["score"]) == 300
    assert not set(sts.sts["sentence1"]) & train_anchors  # never trained on
    again = load_task_file(parse_task_file("other=builtin:sts"))
    assert again.name == "other" and again.revision == sts.revision and again.sts == sts.sts
    ret = load_task_file(parse_task_file("builtin:retrieval"))
    assert ret.kind == "retrieval" and len(ret.queries) == len(ret.corpus) == len(held)
    assert all(docs == {f"d{q[1:]}": 1} for q, docs in ret.qrels.items())
