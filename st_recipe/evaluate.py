"""MTEB evaluation of run dirs and models: named benchmarks (the paper's 15 tasks), local task files, a result cache.

Every score goes through mteb's own ``mteb.evaluate`` and ``ResultCache``, filed under the model's true
name and revision (``<cache>/results/<org>__<name>/<revision>/<Task>.json``), so re-running skips finished
tasks and two models never share a folder. A summary (schema below) is printed and saved as JSON for
``publish`` to read.

The saved summary accumulates over runs of the same model (same name and revision), task by task: a task
this run scored replaces its earlier row, tasks this run did not touch keep theirs, and a task that failed
this time keeps its earlier score (the failure is listed in ``failed`` with ``score_kept: true``). A summary
of another model or revision in the same file is replaced whole. The summary ``evaluate`` returns (and
the CLI prints) is this run's alone, with ``kept`` naming the earlier scores the saved file still holds.

Summary JSON (``<run dir>/eval_results.json``, or ``<cache>/eval_summaries/<org>__<name>__<revision>.json``)::

    {
      "schema": "st-recipe/eval-summary/1",
      "model_name": "org/name",            # the name results are filed under in the mteb cache
      "revision": "sha256-…" | "<hub commit>",
      "mteb_version": "2.26.24",
      "created": "2026-11-01T12:00:00+00:00",
      "cache_dir": "mteb_results",         # relative to the run dir when inside it
      "batch_size": 32,                    # the encode batch size in the end (halved on out-of-memory)
      "tasks": [{"task", "type", "main_score_name", "main_score" (0-1), "split", "subsets": [..],
                 "languages": [..], "source": "mteb" | "local", "cached": bool,
                 "created": "<when this score was made>"}],
      "averages": {"overall", "by_type": {type: mean}, "mean_by_type", "n_tasks"},
      "failed": [{"task", "error", "created", "score_kept": bool}],  # score_kept: an earlier score is in "tasks"
      "kept": ["<task>", ..],              # rows of "tasks" carried over from earlier runs
      "base": null | {same keys for the base model, without "base"}
    }
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import logging
import math
import os
import random
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_recipe._files import read_jsonl
from st_recipe._text import slugify
from st_recipe.errors import StRecipeError
from st_recipe.run import RUN_RECORD

if TYPE_CHECKING:  # pragma: no cover
    from mteb import AbsTask, ResultCache

logger = logging.getLogger(__name__)

PAPER_BENCHMARK = "paper-15"
# The paper's MTEB subset (Ziarko et al. 2024), in the paper's order. English variants throughout:
# the multilingual tasks (STS22, AmazonReviewsClassification) keep only their "en" subset, as in MTEB(eng, v1).
PAPER_15_TASKS: tuple[str, ...] = (
    "MedrxivClusteringS2S",
    "StackExchangeClusteringP2P",
    "ArguAna",
    "CQADupstackGisRetrieval",
    "CQADupstackAndroidRetrieval",
    "QuoraRetrieval",
    "BIOSSES",
    "SICK-R",
    "STS22",
    "SummEval",
    "ImdbClassification",
    "Banking77Classification",
    "AmazonReviewsClassification",
    "SprintDuplicateQuestions",
    "StackOverflowDupQuestions",
)
_PAPER_SUBSETS = {"STS22": ["en"], "AmazonReviewsClassification": ["en"]}

RUN_FILE = RUN_RECORD  # the run record train writes
RUN_RESULTS_DIR = "mteb_results"
RUN_SUMMARY_FILE = "eval_results.json"
SUMMARY_SCHEMA = "st-recipe/eval-summary/1"
TASK_KINDS = ("sts", "retrieval")
# Files and folders inside a model folder that are not part of the model (they change without the
# weights changing), so they stay out of its content hash.
_NOT_MODEL_FILES = {RUN_FILE, RUN_SUMMARY_FILE, "README.md", ".gitattributes"}
_NOT_MODEL_DIRS = {RUN_RESULTS_DIR, "checkpoints", ".git", ".cache", "__pycache__"}


# --------------------------------------------------------------------------------------------- results


@dataclass
class TaskScore:
    """One task's main score for one model."""

    task: str
    type: str
    main_score_name: str
    main_score: float
    split: str
    subsets: list[str]
    languages: list[str]
    source: str = "mteb"
    cached: bool = False
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The summary-JSON form of this row."""
        return dict(self.__dict__)


@dataclass
class EvalSummary:
    """What one ``evaluate`` call produced: per-task main scores, averages, failures, optionally the base model's."""

    model_name: str
    revision: str
    tasks: list[TaskScore] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    base: EvalSummary | None = None
    cache_dir: str = ""
    summary_path: str | None = None
    mteb_version: str = ""
    created: str = ""
    batch_size: int | None = None
    # Earlier scores the saved summary still holds: tasks this run did not touch or failed on.
    kept: list[TaskScore] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no task failed (for this model and its base)."""
        return not self.failed and (self.base is None or self.base.ok)

    @property
    def averages(self) -> dict[str, Any]:
        """Mean main score overall, per task type, and the mean of the per-type means."""
        by_type: dict[str, list[float]] = {}
        for row in self.tasks:
            by_type.setdefault(row.type, []).append(row.main_score)
        type_means = {t: _mean(v) for t, v in sorted(by_type.items())}
        return {
            "overall": _mean([r.main_score for r in self.tasks]),
            "by_type": type_means,
            "mean_by_type": _mean(list(type_means.values())),
            "n_tasks": len(self.tasks),
        }

    def score(self, task: str) -> float | None:
        """The main score of ``task``, or None when it did not run."""
        return next((r.main_score for r in self.tasks if r.task == task), None)

    def to_dict(self) -> dict[str, Any]:
        """The documented summary-JSON object (see the module docstring)."""
        out: dict[str, Any] = {
            "schema": SUMMARY_SCHEMA,
            "model_name": self.model_name,
            "revision": self.revision,
            "mteb_version": self.mteb_version,
            "created": self.created,
            "cache_dir": self.cache_dir,
            "batch_size": self.batch_size,
            "tasks": [r.to_dict() for r in self.tasks],
            "averages": self.averages,
            "failed": list(self.failed),
            "kept": [r.task for r in self.kept],
        }
        out["base"] = None if self.base is None else {k: v for k, v in self.base.to_dict().items() if k != "base"}
        return out

    def to_json(self) -> str:
        """The summary as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def format(self) -> str:
        """A readable table: per-task main score (and base + difference), per-type and overall averages."""
        from st_recipe.cli import format_table

        base = self.base
        head = ("task", "type", "metric", "score") + (("base", "diff") if base else ()) + ("note",)
        rows: list[tuple[str, ...]] = [head]

        def cells(value: float | None, base_value: float | None) -> tuple[str, ...]:
            if base is None:
                return (_fmt(value),)
            diff = None if value is None or base_value is None else value - base_value
            return (_fmt(value), _fmt(base_value), _fmt(diff, signed=True))

        names = [r.task for r in self.tasks] + [r.task for r in (base.tasks if base else []) if self.score(r.task) is None]
        for name in names:
            row = next((r for r in self.tasks if r.task == name), None) or next(r for r in base.tasks if r.task == name)  # type: ignore[union-attr]
            note = "cached" if row.cached and self.score(name) is not None else ""
            if self.score(name) is None:
                note = "failed"
            rows.append((name, row.type, row.main_score_name) + cells(self.score(name), base.score(name) if base else None) + (note,))
        avg, base_avg = self.averages, (base.averages if base else None)
        for kind in sorted(set(avg["by_type"]) | set(base_avg["by_type"] if base_avg else ())):
            rows.append((f"average {kind}", kind, "") + cells(avg["by_type"].get(kind), base_avg["by_type"].get(kind) if base_avg else None) + ("",))
        rows.append(("average (all tasks)", "", "") + cells(avg["overall"], base_avg["overall"] if base_avg else None) + ("",))
        title = f"model {self.model_name} @ {self.revision}"
        if base:
            title += f"  vs base {base.model_name} @ {base.revision}"
        lines = [title, format_table(rows)]
        for item in self.failed + ([dict(f, task=f"{f['task']} (base)") for f in base.failed] if base else []):
            kept = " (the earlier score is kept)" if item.get("score_kept") else ""
            lines.append(f"failed: {item['task']}: {item['error']}{kept}")
        if self.kept:
            where = Path(self.summary_path).name if self.summary_path else "the saved summary"
            names = ", ".join(r.task for r in self.kept[:6]) + (f" and {len(self.kept) - 6} more" if len(self.kept) > 6 else "")
            lines.append(f"kept {len(self.kept)} earlier score{'s' if len(self.kept) != 1 else ''} in {where} "
                         f"(tasks not run or failed this time): {names}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


# ------------------------------------------------------------------------------------------ task files


@dataclass(frozen=True)
class TaskFile:
    """A local evaluation task: an STS jsonl file or a retrieval folder/spec, with an optional name and score range."""

    path: Path
    kind: str
    name: str | None = None
    score_range: tuple[float, float] | None = None


def parse_task_file(spec: str | os.PathLike[str] | TaskFile, score_range: tuple[float, float] | None = None) -> TaskFile:
    """Parse ``[NAME=][sts:|retrieval:]PATH``; without a kind, tell it from the path and content."""
    if isinstance(spec, TaskFile):
        return spec if spec.score_range is not None or score_range is None else TaskFile(spec.path, spec.kind, spec.name, score_range)
    text = os.fspath(spec).strip()
    if not text:
        raise StRecipeError("a task file spec is empty")
    name = None
    head, eq, rest = text.partition("=")
    if eq and re.fullmatch(r"[A-Za-z0-9_.\-]+", head) and not os.path.exists(os.path.expanduser(text)):
        name, text = head, rest
    if text.lower() in BUILTIN_TASKS:
        return _builtin_task_file(text.lower(), name, score_range)
    kind = None
    prefix, colon, rest = text.partition(":")
    if colon and prefix.lower() in TASK_KINDS:
        kind, text = prefix.lower(), rest
    path = Path(os.path.expanduser(text))
    if not path.exists():
        raise StRecipeError(f"task file {text!r} does not exist")
    if kind is None:
        kind = _detect_kind(path)
    elif kind == "sts" and path.is_dir():
        raise StRecipeError(f"sts task file {text!r} is a folder; an STS task is one jsonl file")
    return TaskFile(path=path, kind=kind, name=name, score_range=score_range)


BUILTIN_TASKS = ("builtin:sts", "builtin:retrieval")
"""Offline tasks made from the builtin pairs' held-out split (never trained on), so eval works with no network."""

_BUILTIN_STS_PAIRS = 150


def _builtin_task_file(spec: str, name: str | None, score_range: tuple[float, float] | None) -> TaskFile:
    from st_recipe._files import cache_root
    from st_recipe.data import load_pairs

    held = load_pairs("builtin", split="test")
    kind = spec.split(":", 1)[1]
    folder = cache_root() / "tasks"
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "sts":
        # A matched docstring summary/body scores 1, the same summary against another held-out body scores 0.
        rng = random.Random(0)
        n = min(_BUILTIN_STS_PAIRS, len(held))
        rows: list[dict[str, Any]] = [{"score_range": [0, 1], "name": "builtin-docstring-sts"}]
        for i in range(n):
            rows.append({"sentence1": held.anchors[i], "sentence2": held.positives[i], "score": 1})
            j = (i + rng.randrange(1, len(held))) % len(held)
            rows.append({"sentence1": held.anchors[i], "sentence2": held.positives[j], "score": 0})
        target = folder / "builtin-docstring-sts.jsonl"
        _write_if_changed(target, {"": rows})
    else:
        target = folder / "builtin-docstring-retrieval"
        target.mkdir(exist_ok=True)
        _write_if_changed(target, {
            "queries.jsonl": [{"_id": f"q{i}", "text": a} for i, a in enumerate(held.anchors)],
            "corpus.jsonl": [{"_id": f"d{i}", "title": "", "text": p} for i, p in enumerate(held.positives)],
            "qrels.jsonl": [{"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1} for i in range(len(held))],
        })
    return TaskFile(path=target, kind=kind, name=name or f"builtin-docstring-{kind}", score_range=score_range)


def _write_if_changed(target: Path, files: dict[str, list[dict[str, Any]]]) -> None:
    # Rewriting identical bytes would be harmless, but a temp file + rename keeps concurrent evals from reading halves.
    for rel, rows in files.items():
        path = target / rel if rel else target
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)


def _detect_kind(path: Path) -> str:
    if path.is_dir():
        return "retrieval"
    if path.suffix == ".json":
        return "retrieval"  # a spec naming queries/corpus/qrels files
    first = _first_json_line(path)
    if first is not None:
        if "sentence1" in first or "sentence2" in first or _is_sts_header(first):
            return "sts"
        if "_id" in first:
            raise StRecipeError(f"{path} looks like part of a retrieval set; pass its folder as retrieval:DIR")
    raise StRecipeError(
        f"cannot tell what kind of task file {path} is: use sts:FILE (jsonl with sentence1, sentence2, score) "
        "or retrieval:DIR (queries.jsonl, corpus.jsonl, qrels)"
    )


def _first_json_line(path: Path) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    value = json.loads(line)
                    return value if isinstance(value, dict) else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return None


_STS_HEADER_KEYS = {"score_range", "min_score", "max_score", "name", "language"}


def _is_sts_header(obj: dict[str, Any]) -> bool:
    return "sentence1" not in obj and "sentence2" not in obj and bool(set(obj) & _STS_HEADER_KEYS) and set(obj) <= _STS_HEADER_KEYS


@dataclass
class _LocalData:
    """A parsed task file, ready to become an mteb task."""

    name: str
    kind: str
    language: str
    revision: str
    source: str
    sts: dict[str, list[Any]] | None = None
    score_range: tuple[float, float] | None = None
    queries: list[dict[str, str]] | None = None
    corpus: list[dict[str, str]] | None = None
    qrels: dict[str, dict[str, int]] | None = None


def load_task_file(task_file: TaskFile) -> _LocalData:
    """Read and validate a task file (one-line errors with the line number); no model, no mteb needed."""
    if task_file.kind == "sts":
        return _load_sts(task_file)
    if task_file.kind == "retrieval":
        return _load_retrieval(task_file)
    raise StRecipeError(f"unknown task file kind {task_file.kind!r} (choose from {', '.join(TASK_KINDS)})")


def _task_name(explicit: str | None, header: str | None, path: Path) -> str:
    raw = explicit or header or (path.stem if path.is_file() else path.name)
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", raw).strip("_.")
    if not name:
        raise StRecipeError(f"cannot make a task name from {raw!r}; give one as NAME=PATH")
    return name


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _range(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise StRecipeError(f"{where}: score range must be [low, high]")
    low, high = _number(value[0]), _number(value[1])
    if low is None or high is None or not low < high:
        raise StRecipeError(f"{where}: score range must be two numbers with low < high, not {list(value)}")
    return low, high


def _file_hash(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return "sha256-" + digest.hexdigest()[:16]


def _load_sts(tf: TaskFile) -> _LocalData:
    path = tf.path
    declared: tuple[float, float] | None = None
    header_name = None
    language = "eng-Latn"
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    lines: list[int] = []
    first = True
    for number, obj in read_jsonl(path):
        if first and _is_sts_header(obj):
            first = False
            if "score_range" in obj:
                declared = _range(obj["score_range"], f"{path}:{number}")
            elif "min_score" in obj or "max_score" in obj:
                declared = _range([obj.get("min_score"), obj.get("max_score")], f"{path}:{number}")
            header_name = obj.get("name") if isinstance(obj.get("name"), str) else None
            language = str(obj.get("language") or language)
            continue
        first = False
        for key in ("sentence1", "sentence2"):
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise StRecipeError(f"{path}:{number}: {key!r} must be a non-empty string")
        score = _number(obj.get("score"))
        if score is None:
            raise StRecipeError(f"{path}:{number}: 'score' must be a finite number, not {obj.get('score')!r}")
        s1.append(obj["sentence1"])
        s2.append(obj["sentence2"])
        scores.append(score)
        lines.append(number)
    # A flag overrides the file's own header: the user said so explicitly for this run.
    declared = tf.score_range or declared
    if declared is not None:
        low, high = declared
        for number, score in zip(lines, scores):
            if not low <= score <= high:
                raise StRecipeError(f"{path}:{number}: score {score:g} is outside the declared range [{low:g}, {high:g}]")
    if len(scores) < 3:
        raise StRecipeError(f"{path}: an STS task needs at least 3 scored pairs, found {len(scores)}")
    if min(scores) == max(scores):
        raise StRecipeError(f"{path}: every pair has the same score ({scores[0]:g}); correlation is undefined")
    return _LocalData(
        name=_task_name(tf.name, header_name, path),
        kind="sts",
        language=language,
        revision=_file_hash([path]),
        source=str(path),
        sts={"sentence1": s1, "sentence2": s2, "score": scores},
        # The range only rescales gold scores before a correlation, so the data's own span is exact when none is declared.
        score_range=declared or (min(scores), max(scores)),
    )


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
    except (OSError, UnicodeDecodeError, ValueError) as exc:
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


def _load_retrieval(tf: TaskFile) -> _LocalData:
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
    return _LocalData(
        name=_task_name(tf.name, spec_name, tf.path),
        kind="retrieval",
        language=language,
        revision=_file_hash([queries_path, corpus_path, qrels_path]),
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
def _local_task_bases() -> tuple[type, type]:
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.sts import AbsTaskSTS

    class LocalSTSTask(AbsTaskSTS):
        """An STS task whose pairs come from a local jsonl file."""

        st_recipe_data: _LocalData

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            """Build the test split from the parsed file (no download)."""
            if self.data_loaded:
                return
            self.dataset = DatasetDict({"test": Dataset.from_dict(self.st_recipe_data.sts)})
            self.data_loaded = True

    class LocalRetrievalTask(AbsTaskRetrieval):
        """A retrieval task whose queries, corpus and qrels come from local files."""

        st_recipe_data: _LocalData

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

    return LocalSTSTask, LocalRetrievalTask


def build_local_task(data: _LocalData) -> AbsTask:
    """An mteb task (a real AbsTaskSTS / AbsTaskRetrieval subclass with TaskMetadata) over parsed local data."""
    from mteb.abstasks.task_metadata import TaskMetadata
    from pydantic import ValidationError

    sts_base, retrieval_base = _local_task_bases()
    is_sts = data.kind == "sts"
    try:
        metadata = TaskMetadata(
            name=data.name,
            description=f"Local {'STS' if is_sts else 'retrieval'} task from {Path(data.source).name} (st-recipe task file).",
            reference=None,
            dataset={"path": f"local/{Path(data.source).name}", "revision": data.revision},
            type="STS" if is_sts else "Retrieval",
            category="t2t",
            modalities=["text"],
            eval_splits=["test"],
            eval_langs=[data.language],
            main_score="cosine_spearman" if is_sts else "ndcg_at_10",
            date=None,
            domains=None,
            task_subtypes=None,
            license="not specified",
            annotations_creators=None,
            dialect=[],
            sample_creation=None,
            bibtex_citation="",
        )
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": str(exc)}
        raise StRecipeError(f"task file {data.source}: {first.get('msg')}") from None
    attrs: dict[str, Any] = {"metadata": metadata, "st_recipe_data": data, "__module__": __name__}
    if is_sts:
        attrs["min_score"], attrs["max_score"] = data.score_range
    cls = type(f"Local_{re.sub(r'[^A-Za-z0-9_]', '_', data.name)}", (sts_base if is_sts else retrieval_base,), attrs)
    return cls()


def is_local_task(task: Any) -> bool:
    """True for tasks built from st-recipe task files."""
    return hasattr(task, "st_recipe_data")


# ------------------------------------------------------------------------------------------- task names


def paper_15_tasks() -> list[AbsTask]:
    """The paper's 15 MTEB tasks as mteb task objects, English variants, test split (metadata only, no data)."""
    import mteb

    tasks = []
    for name in PAPER_15_TASKS:
        # The paper predates the ".v2" re-releases, so the original task versions are the comparable ones.
        tasks.append(mteb.get_task(name, eval_splits=["test"], hf_subsets=_PAPER_SUBSETS.get(name)))
    return tasks


@functools.lru_cache(maxsize=1)
def _mteb_names() -> tuple[dict[str, str], dict[str, str]]:
    """Task names and benchmark names (+ aliases), each keyed by lower case."""
    import importlib

    import mteb

    registry = importlib.import_module("mteb.get_tasks")._TASKS_REGISTRY
    tasks = {name.lower(): name for name in registry}
    benchmarks: dict[str, str] = {}
    for bench in mteb.get_benchmarks():
        for name in [bench.name, *(getattr(bench, "aliases", None) or [])]:
            benchmarks[name.lower()] = name
    return tasks, benchmarks


def _close(name: str, choices: Iterable[str]) -> str:
    from st_recipe.catalog import suggest

    # mteb knows hundreds of names: suggest close ones only, never the whole list.
    return suggest(name, choices, cutoff=0.6, fold_case=True, list_choices=False)


def resolve_tasks(benchmarks: Sequence[str] = (), tasks: Sequence[str] = ()) -> list[AbsTask]:
    """mteb task objects for benchmark names (``paper-15``, any mteb benchmark or task name) and task names."""
    import mteb

    task_names, bench_names = _mteb_names()
    out: list[Any] = []
    for raw in benchmarks:
        name = raw.strip()
        if name.lower() == PAPER_BENCHMARK:
            out += paper_15_tasks()
        elif name.lower() in bench_names:
            out += list(mteb.get_benchmark(bench_names[name.lower()]).tasks)
        elif name.lower() in task_names:
            out.append(mteb.get_task(task_names[name.lower()]))
        else:
            hint = _close(name, [PAPER_BENCHMARK, *bench_names.values(), *task_names.values()])
            raise StRecipeError(f"unknown benchmark {name!r}{hint or ' (try paper-15 or MTEB(eng, v2))'}")
    for raw in tasks:
        for name in (n.strip() for n in raw.split(",")):
            if not name:
                continue
            if name.lower() not in task_names:
                raise StRecipeError(f"unknown mteb task {name!r}{_close(name, task_names.values())}")
            out.append(mteb.get_task(task_names[name.lower()]))
    return out


def _check_local_name(data: _LocalData) -> None:
    task_names, _ = _mteb_names()
    if data.name.lower() in task_names:
        # Sharing a built-in task's name would file a local score where mteb's own result belongs (and
        # mteb would later serve one for the other), so a local copy needs a name of its own.
        official = task_names[data.name.lower()]
        raise StRecipeError(f"task file {data.source}: {data.name!r} is the mteb task {official}'s name; "
                            f"name the local copy differently, e.g. {official}-local=PATH")


def _dedupe(tasks: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for task in tasks:
        name = task.metadata.name
        if name in seen:
            if is_local_task(task) != is_local_task(seen[name]):
                raise StRecipeError(f"task name {name!r} is used twice; give the task file another name with NAME=PATH")
            continue
        seen[name] = task
    return list(seen.values())


# ---------------------------------------------------------------------------------------------- models


@dataclass
class _Model:
    """A loaded encoder and the identity its results are filed under."""

    st_model: Any
    name: str
    revision: str
    run_dir: Path | None = None
    run_info: dict[str, Any] | None = None
    experiment: dict[str, Any] | None = None
    adapted_from: str | None = None


def folder_revision(folder: str | os.PathLike[str]) -> str:
    """A content hash of a model folder's files (weights, configs, tokenizer), as an mteb revision string."""
    root = Path(folder)
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        # Skip results and checkpoints: they change while the model stays the same.
        dirnames[:] = sorted(d for d in dirnames if d not in _NOT_MODEL_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name in _NOT_MODEL_FILES or name.startswith("."):
                continue
            path = Path(dirpath) / name
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return "sha256-" + digest.hexdigest()[:16]


def _check_name(name: str) -> str:
    name = name.strip()
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", name):
        raise StRecipeError(f"model name {name!r} must look like 'org/name'")
    return name


def _read_run_info(folder: Path) -> dict[str, Any]:
    from st_recipe._files import read_json_object

    return read_json_object(folder / RUN_FILE)


def _hub_revision(repo_id: str, revision: str | None) -> str:
    """The commit the Hub cache resolved for ``repo_id`` (what was actually loaded)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True)).name
    except Exception:  # noqa: BLE001 -- any cache miss falls back to the name the user asked for
        return revision or "main"


def _load_st(source: str, revision: str | None = None) -> Any:
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(source, revision=revision)
    except Exception as exc:  # noqa: BLE001 -- any load failure is the user's input, shown in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StRecipeError(f"could not load {source!r} as a sentence-transformers model: {first}") from None


def load_model(model: Any, *, model_name: str | None = None) -> _Model:
    """Load MODEL (run dir, ST folder, plain HF folder, Hub id[@revision], catalogue name or a SentenceTransformer)."""
    if not isinstance(model, (str, os.PathLike)):
        if not hasattr(model, "encode") or not hasattr(model, "model_card_data"):
            raise StRecipeError(f"model must be a path, a Hub id or a SentenceTransformer, not {type(model).__name__}")
        name = model_name or model.model_card_data.model_name or ""
        if "/" not in name:
            raise StRecipeError("pass model_name='org/name' to evaluate an in-memory model (results are filed under it)")
        return _Model(model, _check_name(name), _state_revision(model))
    raw = os.fspath(model).strip()
    expanded = Path(os.path.expanduser(raw))
    if expanded.is_dir():
        folder = expanded.resolve()
        if (folder / RUN_FILE).is_file():
            info = _read_run_info(folder)
            recipe = info.get("recipe") if isinstance(info.get("recipe"), dict) else {}
            repo_id = info.get("repo_id") or recipe.get("repo_id")
            name = model_name or (repo_id if isinstance(repo_id, str) and "/" in repo_id else None)
            name = name or f"st-recipe/{slugify(repo_id if isinstance(repo_id, str) and repo_id else folder.name)}"
            if not (folder / "modules.json").is_file():
                raise StRecipeError(f"run dir {raw!r} holds no model (no modules.json): did training finish?")
            base = recipe.get("model")
            return _Model(_load_st(str(folder)), _check_name(name), folder_revision(folder), folder, info,
                          adapted_from=_base_name(base) if isinstance(base, str) else None)
        if (folder / "modules.json").is_file():
            return _Model(_load_st(str(folder)), _check_name(model_name or f"local/{slugify(folder.name)}"), folder_revision(folder))
        if (folder / "config.json").is_file():
            return _base_model(str(folder), pooling="mean", max_seq_length=None, model_name=model_name)
        raise StRecipeError(f"{raw!r} is not a model folder (no modules.json, config.json or {RUN_FILE})")
    if expanded.exists():
        raise StRecipeError(f"{raw!r} is a file, not a model folder")
    repo, at, rev = raw.partition("@")
    if re.fullmatch(r"[\w.\-]+/[\w.\-]+", repo) and not raw.startswith((".", "~")):
        st_model = _load_st(repo, revision=rev if at else None)
        return _Model(st_model, _check_name(model_name or repo), _hub_revision(repo, rev if at else None))
    return _base_model(raw, pooling="mean", max_seq_length=None, model_name=model_name)


def _state_revision(st_model: Any) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(st_model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return "sha256-" + digest.hexdigest()[:16]


def _base_name(spec: str) -> str | None:
    """The mteb name of a base-model spec: its Hub id, ``local/<folder>`` or ``random/<catalogue name>``."""
    from st_recipe.catalog import parse_model_spec

    try:
        ref = parse_model_spec(spec)
    except StRecipeError:
        return None
    if ref.kind == "local":
        # Never a machine's absolute path: the name ends up in files that may be published.
        return f"local/{slugify(Path(ref.raw).name)}"
    if ref.is_random:
        return f"random/{ref.spec.name}"  # type: ignore[union-attr]
    return ref.load_id


def _base_model(spec: str, *, pooling: str, max_seq_length: int | None, normalize: bool = False,
                seed: int = 0, model_name: str | None = None) -> _Model:
    """A base LM as a mean-pooled encoder (st_recipe.encoder.build_encoder), named by where it came from."""
    from st_recipe.catalog import parse_model_spec
    from st_recipe.encoder import build_encoder

    ref = parse_model_spec(spec)
    kwargs: dict[str, Any] = {"pooling": pooling, "normalize": normalize, "seed": seed}
    if max_seq_length:
        kwargs["max_seq_length"] = max_seq_length
    st_model = build_encoder(spec, **kwargs)
    name = _base_name(spec)
    if ref.kind == "local":
        revision = folder_revision(ref.raw)
    elif ref.is_random:
        revision = f"seed-{seed}"
    else:
        revision = _hub_revision(ref.load_id, None)
    # The same LM evaluated as ST loads it (e.g. last-token pooling) is another model: keep it apart.
    experiment = {"pooling": pooling, "max_seq_length": st_model.max_seq_length}
    return _Model(st_model, _check_name(model_name or name or ""), revision, experiment=experiment)


# ------------------------------------------------------------------------------------- OOM-safe encoding


def is_out_of_memory(exc: BaseException) -> bool:
    """True for accelerator out-of-memory errors (torch's OutOfMemoryError or its RuntimeError message)."""
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_accelerator_memory() -> None:
    if "torch" not in sys.modules:
        return
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def encode_with_backoff(encode: Callable[[int], Any], batch_size: int) -> tuple[Any, int]:
    """Call ``encode(batch_size)``, halving the batch size on out-of-memory until it fits; returns (result, batch size used)."""
    while True:
        try:
            return encode(batch_size), batch_size
        except Exception as exc:
            if not is_out_of_memory(exc) or batch_size <= 1:
                raise
            logger.warning("out of memory encoding at batch size %d; retrying with %d", batch_size, batch_size // 2)
        # Freed outside the except block: the traceback there still pins the failed batch's tensors.
        _free_accelerator_memory()
        batch_size //= 2


@functools.lru_cache(maxsize=1)
def _encoder_wrapper_class() -> type:
    import warnings

    from mteb.models import SentenceTransformerEncoderWrapper

    class StRecipeEncoder(SentenceTransformerEncoderWrapper):
        """mteb's ST wrapper with the model's true name/revision, an encode counter and OOM backoff."""

        def __init__(self, loaded: _Model, batch_size: int) -> None:
            with warnings.catch_warnings():
                # mteb 2.26 trips its own deprecation warnings (a default argument, an ST method rename)
                # on every ST model it wraps; the user can do nothing about them.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                super().__init__(loaded.st_model)
            self.mteb_model_meta = self.mteb_model_meta.model_copy(
                update={"name": loaded.name, "revision": loaded.revision, "experiment_kwargs": loaded.experiment,
                        "adapted_from": loaded.adapted_from}
            )
            self.batch_size = batch_size
            self.encode_calls = 0

        def encode(self, inputs: Any, **kwargs: Any) -> Any:
            """Encode with the current batch size, halving it for good whenever the accelerator runs out of memory."""
            self.encode_calls += 1

            def run(batch_size: int) -> Any:
                return SentenceTransformerEncoderWrapper.encode(self, inputs, **{**kwargs, "batch_size": batch_size})

            result, self.batch_size = encode_with_backoff(run, self.batch_size)
            return result

    return StRecipeEncoder


# ------------------------------------------------------------------------------------------- evaluation


def _is_download_failure(task: Any, exc: BaseException) -> bool:
    """True when a built-in task failed because its data could not be fetched from the Hub."""
    if is_local_task(task):
        return False
    names = {cls.__name__ for cls in type(exc).__mro__}
    first = str(exc)
    return bool(names & {"ConnectionError", "DatasetNotFoundError", "OfflineModeIsEnabled", "LocalEntryNotFoundError",
                         "HfHubHTTPError", "Timeout", "HTTPError"}) or "Couldn't reach" in first or "offline" in first.lower()


def _describe_failure(task: Any, exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    first = first if len(first) <= 200 else first[:197] + "..."
    if _is_download_failure(task, exc):
        return f"could not load its data from the Hub ({first}); offline? evaluate a local copy with --task-file"
    return f"{type(exc).__name__}: {first}"


class _OfflineSwitch:
    """Once the Hub proves unreachable, later built-in tasks read only local caches.

    Without this every further task spends ~25 s in huggingface_hub's retries before failing the same way.
    """

    def __init__(self) -> None:
        self.saved: list[tuple[Any, Any]] | None = None

    def trip(self) -> None:
        """Switch huggingface_hub and datasets to offline mode for the rest of this evaluation."""
        if self.saved is not None:
            return
        self.saved = []
        for module_name in ("huggingface_hub.constants", "datasets.config"):
            module = sys.modules.get(module_name)
            if module is not None and hasattr(module, "HF_HUB_OFFLINE") and not module.HF_HUB_OFFLINE:
                self.saved.append((module, module.HF_HUB_OFFLINE))
                module.HF_HUB_OFFLINE = True
        if self.saved:
            logger.info("the Hub is unreachable: remaining built-in tasks use locally cached data only")

    def restore(self) -> None:
        """Put the libraries' offline flags back as they were."""
        for module, value in self.saved or []:
            module.HF_HUB_OFFLINE = value
        self.saved = None


def _task_score(task: Any, result: Any, cached: bool) -> TaskScore:
    splits = list(task.eval_splits)
    subsets = set(task.hf_subsets or ["default"])
    entries = [(s, e) for s in splits for e in result.scores.get(s, []) if e.get("hf_subset") in subsets]
    if not entries:  # aggregate tasks report one "default" subset whatever their metadata lists
        entries = [(s, e) for s in splits for e in result.scores.get(s, [])]
    if not entries:
        raise RuntimeError(f"no scores for splits {splits}")
    languages = sorted({lang for _, e in entries for lang in e.get("languages", [])})
    return TaskScore(
        task=task.metadata.name,
        type=task.metadata.type,
        main_score_name=task.metadata.main_score,
        # mteb rounds what it writes to 6 places; round fresh scores the same so a cached re-run reads identically.
        main_score=round(float(sum(e["main_score"] for _, e in entries) / len(entries)), 6),
        split=",".join(sorted({s for s, _ in entries})),
        subsets=sorted({e["hf_subset"] for _, e in entries}),
        languages=languages,
        source="local" if is_local_task(task) else "mteb",
        cached=cached,
    )


def _strategy(task: Any, meta: Any, cache: ResultCache, overwrite: bool) -> str:
    if overwrite:
        return "always"
    if is_local_task(task):
        # mteb reuses a complete cached result even when the dataset revision differs; an edited task
        # file must be re-run, so compare the file hash (the task's dataset revision) ourselves.
        cached = cache.load_task_result(task.metadata.name, meta)
        if cached is not None and cached.dataset_revision != task.metadata.revision:
            logger.info("%s: task file changed since the cached result; re-evaluating", task.metadata.name)
            return "always"
    return "only-missing"


def _run(loaded: _Model, tasks: list[Any], cache: ResultCache, *, batch_size: int, overwrite: bool,
         progress: bool, label: str, offline: _OfflineSwitch) -> EvalSummary:
    import mteb
    from tqdm.auto import tqdm

    wrapper = _encoder_wrapper_class()(loaded, batch_size)
    meta = wrapper.mteb_model_meta
    summary = EvalSummary(model_name=loaded.name, revision=loaded.revision)
    bar = tqdm(tasks, desc=label, unit="task", disable=not progress, file=sys.stderr, leave=False)
    for task in bar:
        bar.set_postfix_str(task.metadata.name)
        before = wrapper.encode_calls
        try:
            result = mteb.evaluate(
                wrapper,
                task,
                cache=cache,
                overwrite_strategy=_strategy(task, meta, cache, overwrite),
                encode_kwargs={"batch_size": wrapper.batch_size, "show_progress_bar": False},
                show_progress_bar=False,
                co2_tracker=False,
                raise_error=True,
            )
            if result.exceptions:
                raise RuntimeError(result.exceptions[0].exception)
            summary.tasks.append(_task_score(task, result.task_results[0], cached=wrapper.encode_calls == before))
        except Exception as exc:  # noqa: BLE001 -- one failing task must not stop the others
            message = _describe_failure(task, exc)
            if _is_download_failure(task, exc):
                offline.trip()
            logger.info("%s failed: %s", task.metadata.name, message)
            summary.failed.append({"task": task.metadata.name, "error": message})
    bar.close()
    summary.batch_size = wrapper.batch_size
    return summary


def _default_cache(loaded: _Model) -> Path:
    if loaded.run_dir is not None:
        return loaded.run_dir / RUN_RESULTS_DIR
    from st_recipe._files import cache_root

    return cache_root() / "mteb"


def evaluate(
    model: Any,
    *,
    benchmarks: Sequence[str] = (),
    tasks: Sequence[str] = (),
    task_files: Sequence[str | os.PathLike[str] | TaskFile] = (),
    batch_size: int = 32,
    cache_dir: str | os.PathLike[str] | None = None,
    compare_base: bool = False,
    overwrite: bool = False,
    model_name: str | None = None,
    progress: bool = True,
    score_range: tuple[float, float] | None = None,
) -> EvalSummary:
    """Evaluate MODEL on benchmarks, mteb tasks and local task files with mteb; cache, summarise and save the results."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise StRecipeError(f"batch size must be a positive integer, not {batch_size!r}")
    if score_range is not None:
        score_range = _range(score_range, "--score-range")
    # Everything cheap to check (names, files, model path) fails before any model is loaded.
    parsed = [load_task_file(parse_task_file(spec, score_range)) for spec in task_files]
    for data in parsed:
        _check_local_name(data)
    if not benchmarks and not tasks and not parsed:
        benchmarks = (PAPER_BENCHMARK,)
    task_objs = _dedupe(resolve_tasks(benchmarks, tasks) + [build_local_task(d) for d in parsed])
    if compare_base and isinstance(model, (str, os.PathLike)):
        folder = Path(os.path.expanduser(os.fspath(model)))
        if not (folder / RUN_FILE).is_file():
            raise StRecipeError(f"--compare-base needs a run dir with {RUN_FILE} (its recipe.model names the base model)")
    loaded = load_model(model, model_name=model_name)
    if compare_base and loaded.run_dir is None:
        raise StRecipeError(f"--compare-base needs a run dir with {RUN_FILE} (its recipe.model names the base model)")

    import mteb

    cache_path = Path(os.path.expanduser(os.fspath(cache_dir))) if cache_dir else _default_cache(loaded)
    cache = mteb.ResultCache(cache_path)
    offline = _OfflineSwitch()
    try:
        summary = _run(loaded, task_objs, cache, batch_size=batch_size, overwrite=overwrite, progress=progress,
                       label=f"eval {loaded.name}", offline=offline)
        if compare_base:
            base_spec, pooling, normalize, seed = _base_settings(loaded)
            max_len = loaded.st_model.max_seq_length
            loaded.st_model = None  # one model in memory at a time
            base = _base_model(base_spec, pooling=pooling, max_seq_length=max_len, normalize=normalize, seed=seed)
            summary.base = _run(base, task_objs, cache, batch_size=batch_size, overwrite=overwrite, progress=progress,
                                label=f"eval base {base.name}", offline=offline)
    finally:
        offline.restore()
    _finish(summary, loaded, cache_path)
    return summary


def _base_settings(loaded: _Model) -> tuple[str, str, bool, int]:
    recipe = (loaded.run_info or {}).get("recipe")
    if not isinstance(recipe, dict) or not isinstance(recipe.get("model"), str):
        raise StRecipeError(f"{loaded.run_dir / RUN_FILE} has no recipe.model naming the base model")  # type: ignore[operator]
    modules = list(loaded.st_model)
    pooling_modules = [m for m in modules if type(m).__name__ == "Pooling"]
    trained_pooling = getattr(pooling_modules[0], "pooling_mode", "mean") if pooling_modules else "mean"
    pooling = recipe.get("pooling") if isinstance(recipe.get("pooling"), str) else trained_pooling
    normalize = any(type(m).__name__ == "Normalize" for m in modules)
    seed = recipe.get("seed") if isinstance(recipe.get("seed"), int) else 0
    return recipe["model"], pooling, normalize, seed


def _finish(summary: EvalSummary, loaded: _Model, cache_path: Path) -> None:
    import mteb

    now = datetime.datetime.now(tz=datetime.UTC).isoformat(timespec="seconds")
    for s in (summary, summary.base):
        if s is not None:
            s.mteb_version, s.created = mteb.__version__, now
    if loaded.run_dir is not None:
        target = loaded.run_dir / RUN_SUMMARY_FILE
        # Relative inside the run dir: the summary may be published, and absolute paths leak a machine's layout.
        shown = cache_path.resolve()
        summary.cache_dir = str(shown.relative_to(loaded.run_dir)) if shown.is_relative_to(loaded.run_dir) else str(shown)
    else:
        safe = f"{loaded.name.replace('/', '__')}__{loaded.revision}"
        target = cache_path / "eval_summaries" / f"{safe}.json"
        summary.cache_dir = str(cache_path)
    if summary.base is not None:
        summary.base.cache_dir = summary.cache_dir
    for s in (summary, summary.base):
        for row in s.tasks if s is not None else []:
            row.created = now
        for item in s.failed if s is not None else []:
            item["created"] = now
    saved = _merge_saved(summary, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    summary.summary_path = str(target)


def _merge_saved(summary: EvalSummary, target: Path) -> dict[str, Any]:
    """The summary JSON to save: this run's outcome per task laid over the earlier file's (module docstring)."""
    previous: Any = None
    if target.is_file():
        try:
            previous = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            summary.notes.append(f"{target.name} was not readable JSON; it now holds this run's results only")
    if previous is not None and not _same_model(summary, previous):
        if isinstance(previous, dict) and (previous.get("tasks") or previous.get("failed")):
            # Scores of other weights would be misreported as this model's, so none are carried over.
            summary.notes.append(f"{target.name} held results of {previous.get('model_name')} at revision "
                                 f"{previous.get('revision')} (another model or revision); they were replaced")
        previous = None
    saved = _merge(summary, previous)
    out = saved.to_dict()
    if summary.base is not None:
        out["base"] = {k: v for k, v in _merge(summary.base, (previous or {}).get("base")).to_dict().items() if k != "base"}
    elif previous is not None and isinstance(previous.get("base"), dict):
        out["base"] = previous["base"]  # an earlier --compare-base still describes this model's base
    return out


def _same_model(summary: EvalSummary, previous: Any) -> bool:
    return (isinstance(previous, dict) and previous.get("schema") == SUMMARY_SCHEMA
            and previous.get("model_name") == summary.model_name and previous.get("revision") == summary.revision)


_TASK_FIELDS = {f.name for f in dataclasses.fields(TaskScore)}


def _saved_rows(rows: Any) -> list[TaskScore]:
    """The well-formed task rows of an earlier summary file (anything else is dropped)."""
    out = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or not isinstance(row.get("task"), str) or _number(row.get("main_score")) is None:
            continue
        values = {"type": "", "main_score_name": "main_score", "split": "", "subsets": [], "languages": [],
                  **{k: v for k, v in row.items() if k in _TASK_FIELDS}}
        out.append(TaskScore(**values))
    return out


def _merge(current: EvalSummary, previous: Any) -> EvalSummary:
    """``current`` with the earlier rows of the same model kept per task; sets ``current.kept`` and failures' ``score_kept``."""
    if not _same_model(current, previous):
        previous = None
    old_rows = _saved_rows((previous or {}).get("tasks"))
    old_failed = [f for f in (previous or {}).get("failed") or [] if isinstance(f, dict) and isinstance(f.get("task"), str)]
    scored = {r.task: r for r in current.tasks}
    attempted = set(scored) | {f["task"] for f in current.failed}
    current.kept = [r for r in old_rows if r.task not in scored]
    kept_names = {r.task for r in current.kept}
    for item in current.failed:
        item["score_kept"] = item["task"] in kept_names
    old_names = {r.task for r in old_rows}
    # Earlier order first, so a re-run does not reshuffle the table a card shows.
    tasks = [scored.get(r.task, r) for r in old_rows] + [r for r in current.tasks if r.task not in old_names]
    failed = list(current.failed) + [f for f in old_failed if f["task"] not in attempted]
    return dataclasses.replace(current, tasks=tasks, failed=failed, base=None, kept=list(current.kept), notes=[])
