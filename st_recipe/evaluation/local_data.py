"""The types every kind of local task file shares: the parsed spec, the parsed data, and what a kind provides."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.evaluation.summary import finite_number


@dataclass(frozen=True)
class TaskFile:
    """A local evaluation task: an STS jsonl file or a retrieval folder/spec, with an optional name and score range."""

    path: Path
    kind: str
    name: str | None = None
    score_range: tuple[float, float] | None = None


@dataclass
class LocalData:
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


def _no_attrs(data: LocalData) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class LocalKind:
    """One kind of local task file: how to read and check it, and the mteb task it becomes."""

    load: Callable[[TaskFile], LocalData]  # read and validate (one-line errors); no model, no mteb
    task_class: Callable[[], type]  # the mteb task class (an AbsTask subclass whose load_data reads st_recipe_data)
    task_type: str  # mteb's task type, e.g. "STS"
    main_score: str  # mteb's main score name, e.g. "cosine_spearman"
    label: str  # how the task's description names the kind
    one_file: bool = False  # True when a folder is never this kind
    task_attrs: Callable[[LocalData], dict[str, Any]] = field(default=_no_attrs)  # extra class attributes


def is_local_task(task: Any) -> bool:
    """True for tasks built from st-recipe task files."""
    return hasattr(task, "st_recipe_data")


def task_name(explicit: str | None, header: str | None, path: Path) -> str:
    """The task's name: given as NAME=PATH, else from the file's header, else from the file or folder name."""
    raw = explicit or header or (path.stem if path.is_file() else path.name)
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", raw).strip("_.")
    if not name:
        raise StRecipeError(f"cannot make a task name from {raw!r}; give one as NAME=PATH")
    return name


def score_range(value: Any, where: str) -> tuple[float, float]:
    """``[low, high]`` as two finite floats with low < high (one-line error naming ``where`` otherwise)."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise StRecipeError(f"{where}: score range must be [low, high]")
    low, high = finite_number(value[0]), finite_number(value[1])
    if low is None or high is None or not low < high:
        raise StRecipeError(f"{where}: score range must be two numbers with low < high, not {list(value)}")
    return low, high


def file_hash(paths: Sequence[Path]) -> str:
    """A content hash of the task's files, used as the mteb dataset revision (an edited file is re-run)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return "sha256-" + digest.hexdigest()[:16]
