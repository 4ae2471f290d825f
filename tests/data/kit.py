"""Helpers shared by the st_recipe.data tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from st_recipe.data import PairData


def as_set(pairs: PairData) -> set[tuple[str, str]]:
    return set(zip(pairs.anchors, pairs.positives))


def error_text(excinfo: pytest.ExceptionInfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def write_jsonl(path: Path, rows: list[dict], raw_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    for index, text in (raw_lines or {}).items():
        lines.insert(index, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
