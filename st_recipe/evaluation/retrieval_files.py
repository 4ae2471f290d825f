"""The ``retrieval`` kind of local task file: queries, a corpus and relevance judgements (BEIR's layout).

Either a folder with ``queries.jsonl``, ``corpus.jsonl`` and ``qrels.jsonl`` / ``qrels.tsv`` /
``qrels/test.tsv``, or a JSON spec ``{"queries": path, "corpus": path, "qrels": path, "name"?, "language"?}``
whose relative paths are read from the spec's folder.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from st_recipe._io import read_jsonl
from st_recipe.errors import StRecipeError
from st_recipe.evaluation.local_data import LocalData, LocalKind, TaskFile, file_hash, task_name

logger = logging.getLogger(__name__)


def _retrieval_files(tf: TaskFile) -> tuple[Path, Path, Path, str | None, str]:
    path = tf.path
    if path.is_dir():
        qrels = next((p for p in (path / "qrels.jsonl", path / "qrels.tsv", path / "qrels" / "test.tsv") if p.is_file()), None)
        missing = [n for n in ("queries.jsonl", "corpus.jsonl") if not (path / n).is_file()] + ([] if qrels else ["qrels.jsonl or qrels.tsv"])
        if missing:
            raise StRecipeError(f"retrieval folder {path} lacks {', '.join(missing)}")
        return path / "queries.jsonl", path / "corpus.jsonl", qrels, None, "eng-Latn"  # type: ignore[return-value]
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise StRecipeError(f"{path}: not a readable JSON retrieval spec ({exc})") from None
    if not isinstance(spec, dict) or not all(isinstance(spec.get(k), str) for k in ("queries", "corpus", "qrels")):
        raise StRecipeError(f"{path}: a retrieval spec is a JSON object with 'queries', 'corpus' and 'qrels' file paths")
    files = []
    for key in ("queries", "corpus", "qrels"):
        p = Path(os.path.expanduser(spec[key]))
        p = p if p.is_absolute() else path.parent / p
        if not p.is_file():
            raise StRecipeError(f"{path}: {key} file {spec[key]!r} does not exist")
        files.append(p)
    name = spec.get("name") if isinstance(spec.get("name"), str) else None
    return files[0], files[1], files[2], name, str(spec.get("language") or "eng-Latn")


def load_retrieval(tf: TaskFile) -> LocalData:
    """Read and check a retrieval folder or spec (one-line errors with the file and line)."""
    queries_path, corpus_path, qrels_path, spec_name, language = _retrieval_files(tf)
    queries = _read_items(queries_path, with_title=False)
    corpus = _read_items(corpus_path, with_title=True)
    query_ids = {q["id"] for q in queries}
    doc_ids = {d["id"] for d in corpus}
    qrels: dict[str, dict[str, int]] = {}
    for number, qid, did, score in _read_qrels(qrels_path):
        if qid not in query_ids:
            raise StRecipeError(f"{qrels_path}:{number}: query-id {qid!r} is not in {queries_path.name}")
        if did not in doc_ids:
            raise StRecipeError(f"{qrels_path}:{number}: corpus-id {did!r} is not in {corpus_path.name}")
        qrels.setdefault(qid, {})[did] = score
    if not any(s > 0 for docs in qrels.values() for s in docs.values()):
        raise StRecipeError(f"{qrels_path}: no query has a relevant document (score > 0)")
    # Queries without judgements cannot be scored; BEIR's loaders drop them the same way.
    kept = [q for q in queries if q["id"] in qrels]
    if len(kept) < len(queries):
        logger.info("%s: %d queries have no qrels and are skipped", queries_path, len(queries) - len(kept))
    return LocalData(
        name=task_name(tf.name, spec_name, tf.path),
        kind="retrieval",
        language=language,
        revision=file_hash([queries_path, corpus_path, qrels_path]),
        source=str(tf.path),
        queries=kept,
        corpus=corpus,
        qrels=qrels,
    )


def _read_items(path: Path, *, with_title: bool) -> list[dict[str, str]]:
    items: list[dict[str, str]] = []
    seen: set[str] = set()
    for number, obj in read_jsonl(path):
        raw_id = obj.get("_id", obj.get("id"))
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or str(raw_id) == "":
            raise StRecipeError(f"{path}:{number}: '_id' must be a non-empty string")
        item_id = str(raw_id)
        if item_id in seen:
            raise StRecipeError(f"{path}:{number}: duplicate _id {item_id!r}")
        seen.add(item_id)
        text = obj.get("text")
        title = obj.get("title", "")
        if not isinstance(text, str) or (not text.strip() and not (with_title and isinstance(title, str) and title.strip())):
            raise StRecipeError(f"{path}:{number}: 'text' must be a non-empty string")
        item = {"id": item_id, "text": text}
        if with_title:
            if title is None:
                title = ""
            if not isinstance(title, str):
                raise StRecipeError(f"{path}:{number}: 'title' must be a string")
            item["title"] = title
        items.append(item)
    if not items:
        raise StRecipeError(f"{path}: no entries")
    return items


def _read_qrels(path: Path) -> Iterable[tuple[int, str, str, int]]:
    if path.suffix == ".jsonl":
        for number, obj in read_jsonl(path):
            qid = obj.get("query-id", obj.get("query_id"))
            did = obj.get("corpus-id", obj.get("corpus_id"))
            if qid is None or did is None:
                raise StRecipeError(f"{path}:{number}: a qrels line needs 'query-id', 'corpus-id' and 'score'")
            yield number, str(qid), str(did), _relevance(obj.get("score", 1), f"{path}:{number}")
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StRecipeError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 3:
            raise StRecipeError(f"{path}:{number}: expected 3 tab-separated columns (query-id, corpus-id, score), got {len(parts)}")
        if number == 1 and parts[2].strip().lower() == "score":
            continue  # BEIR's header line
        yield number, parts[0].strip(), parts[1].strip(), _relevance(parts[2].strip(), f"{path}:{number}")


def _relevance(value: Any, where: str) -> int:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not number.is_integer() or number < 0:
        raise StRecipeError(f"{where}: relevance score must be a non-negative integer, not {value!r}")
    return int(number)


@functools.lru_cache(maxsize=1)
def _task_class() -> type:
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    class LocalRetrievalTask(AbsTaskRetrieval):
        """A retrieval task whose queries, corpus and qrels come from local files."""

        st_recipe_data: LocalData

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            """Build the test split from the parsed files (no download)."""
            if self.data_loaded:
                return
            data = self.st_recipe_data
            split = {
                "queries": Dataset.from_list(data.queries),
                "corpus": Dataset.from_list(data.corpus),
                "relevant_docs": data.qrels,
                "top_ranked": None,
            }
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    return LocalRetrievalTask


RETRIEVAL = LocalKind(load=load_retrieval, task_class=_task_class, task_type="Retrieval", main_score="ndcg_at_10",
                      label="retrieval")
