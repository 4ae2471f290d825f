"""Local evaluation tasks: ``[NAME=][KIND:]PATH`` specs, the registry of local task kinds, builtin offline tasks.

A kind (``sts``, ``retrieval``) is one :class:`~st_recipe.evaluation.local_data.LocalKind` entry in
:data:`LOCAL_KINDS`: its loader reads and checks the files (no model, no mteb), and its mteb task class
turns the parsed data into a real mteb task with ``TaskMetadata``, so scores go through ``mteb.evaluate``
and its result cache like any built-in task. Adding a kind is one entry there (reached with ``KIND:PATH``;
telling it from the path alone is :func:`_detect_kind`'s job).
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_recipe._io import atomic_write_text, cache_root, read_jsonl
from st_recipe.errors import StRecipeError
from st_recipe.evaluation.local_data import LocalData, LocalKind, TaskFile
from st_recipe.evaluation.retrieval_files import RETRIEVAL
from st_recipe.evaluation.sts_file import STS, is_sts_header

if TYPE_CHECKING:  # pragma: no cover
    from mteb import AbsTask

LOCAL_KINDS: dict[str, LocalKind] = {"sts": STS, "retrieval": RETRIEVAL}
"""Local task kinds by the name a spec gives them (``sts:FILE``, ``retrieval:DIR``)."""

TASK_KINDS = tuple(LOCAL_KINDS)

BUILTIN_TASKS = ("builtin:sts", "builtin:retrieval")
"""Offline tasks made from the builtin pairs' held-out split (never trained on), so eval works with no network."""

_BUILTIN_STS_PAIRS = 150


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
    if colon and prefix.lower() in LOCAL_KINDS:
        kind, text = prefix.lower(), rest.strip()
        if not text:
            raise StRecipeError(f"task file spec {os.fspath(spec)!r} names no file after {prefix}:")
    elif colon and re.fullmatch(r"[A-Za-z]\w+", prefix) and not os.path.exists(os.path.expanduser(text)):
        # 'foo:x' is a kind typo far more often than a file whose name holds a colon.
        raise StRecipeError(f"unknown task file kind {prefix!r} in {text!r}; choose from "
                            f"{', '.join(k + ':PATH' for k in TASK_KINDS)}, {' or '.join(BUILTIN_TASKS)}")
    path = Path(os.path.expanduser(text))
    if not path.exists():
        raise StRecipeError(f"task file {text!r} does not exist")
    if not (path.is_dir() or path.is_file()):
        raise StRecipeError(f"task file {text!r} is not a regular file (a pipe, device or socket)")
    if kind is None:
        kind = _detect_kind(path)
    elif LOCAL_KINDS[kind].one_file and path.is_dir():
        raise StRecipeError(f"{kind} task file {text!r} is a folder; an {LOCAL_KINDS[kind].label} task is one jsonl file")
    return TaskFile(path=path, kind=kind, name=name, score_range=score_range)


def load_task_file(task_file: TaskFile) -> LocalData:
    """Read and validate a task file (one-line errors with the line number); no model, no mteb needed."""
    kind = LOCAL_KINDS.get(task_file.kind)
    if kind is None:
        raise StRecipeError(f"unknown task file kind {task_file.kind!r} (choose from {', '.join(TASK_KINDS)})")
    return kind.load(task_file)


def build_local_task(data: LocalData) -> AbsTask:
    """An mteb task (a real AbsTaskSTS / AbsTaskRetrieval subclass with TaskMetadata) over parsed local data."""
    from mteb.abstasks.task_metadata import TaskMetadata
    from pydantic import ValidationError

    kind = LOCAL_KINDS[data.kind]
    try:
        metadata = TaskMetadata(
            name=data.name,
            description=f"Local {kind.label} task from {Path(data.source).name} (st-recipe task file).",
            reference=None,
            dataset={"path": f"local/{Path(data.source).name}", "revision": data.revision},
            type=kind.task_type,
            category="t2t",
            modalities=["text"],
            eval_splits=["test"],
            eval_langs=[data.language],
            main_score=kind.main_score,
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
    attrs: dict[str, Any] = {"metadata": metadata, "st_recipe_data": data, "__module__": __name__, **kind.task_attrs(data)}
    cls = type(f"Local_{re.sub(r'[^A-Za-z0-9_]', '_', data.name)}", (kind.task_class(),), attrs)
    return cls()


# ----------------------------------------------------------------------------------- telling the kind


def _detect_kind(path: Path) -> str:
    if path.is_dir():
        return "retrieval"
    if path.suffix == ".json":
        return "retrieval"  # a spec naming queries/corpus/qrels files
    first = _first_json_line(path)
    if first is not None:
        if "sentence1" in first or "sentence2" in first or is_sts_header(first):
            return "sts"
        if "_id" in first:
            raise StRecipeError(f"{path} looks like part of a retrieval set; pass its folder as retrieval:DIR")
    raise StRecipeError(
        f"cannot tell what kind of task file {path} is: use sts:FILE (jsonl with sentence1, sentence2, score) "
        "or retrieval:DIR (queries.jsonl, corpus.jsonl, qrels)"
    )


def _first_json_line(path: Path) -> dict[str, Any] | None:
    """The first line's object, or None when the file is unreadable or does not start with a JSON object."""
    try:
        return next((obj for _, obj in read_jsonl(path)), None)
    except StRecipeError:
        return None


# ------------------------------------------------------------------------------------- builtin tasks


def _builtin_task_file(spec: str, name: str | None, score_range: tuple[float, float] | None) -> TaskFile:
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
    # Rewriting identical bytes would be harmless, but an atomic write keeps concurrent evals from reading halves.
    for rel, rows in files.items():
        path = target / rel if rel else target
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        atomic_write_text(path, text)
