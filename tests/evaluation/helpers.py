"""Task files and CLI helpers shared by the evaluation tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

from click.testing import CliRunner

from st_recipe.cli import main
from tests import kit


def write_sts(path: Path, n: int = 20, *, header: dict | None = None, seed: int = 0) -> Path:
    """~20 scored pairs from the kit's sentences, with an optional first-line header."""
    rng = random.Random(seed)
    lines = [json.dumps(header)] if header is not None else []
    for i in range(n):
        a = kit.SENTENCES[i % len(kit.SENTENCES)]
        b = a.lower() if i % 3 == 0 else kit.SENTENCES[(3 * i + 1) % len(kit.SENTENCES)]
        lines.append(json.dumps({"sentence1": a, "sentence2": b, "score": round(rng.uniform(0, 5), 2)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_retrieval(folder: Path, n_queries: int = 10, n_docs: int = 30) -> Path:
    """A BEIR-style folder: queries.jsonl, corpus.jsonl and qrels.tsv with a header line."""
    folder.mkdir(parents=True, exist_ok=True)
    s = kit.SENTENCES
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n_docs):
            fh.write(json.dumps({"_id": f"d{i}", "title": f"Doc {i}", "text": f"{s[i % len(s)]} Note {i}."}) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n_queries):
            fh.write(json.dumps({"_id": f"q{i}", "text": s[i % len(s)].lower()}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in range(n_queries)]
    (folder / "qrels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def invoke(*args: str):
    return CliRunner().invoke(main, ["eval", *args])


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]
