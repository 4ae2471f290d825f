"""mteb task names: the paper's 15 tasks, mteb benchmarks and task names (with close-name suggestions), dedupe."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_recipe._io import atomic_write_text, cache_root
from st_recipe.errors import StRecipeError
from st_recipe.evaluation.local_data import LocalData, is_local_task
from st_recipe.models.catalog import suggest

if TYPE_CHECKING:  # pragma: no cover
    from mteb import AbsTask

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


def paper_15_tasks() -> list[AbsTask]:
    """The paper's 15 MTEB tasks as mteb task objects, English variants, test split (metadata only, no data)."""
    import mteb

    tasks = []
    for name in PAPER_15_TASKS:
        # The paper predates the ".v2" re-releases, so the original task versions are the comparable ones.
        tasks.append(mteb.get_task(name, eval_splits=["test"], hf_subsets=_PAPER_SUBSETS.get(name)))
    return tasks


Names = tuple[dict[str, str], dict[str, str]]


@functools.lru_cache(maxsize=1)
def _mteb_names() -> Names:
    """Task names and benchmark names (+ aliases), each keyed by lower case, from mteb itself."""
    import importlib

    import mteb

    registry = importlib.import_module("mteb.get_tasks")._TASKS_REGISTRY
    tasks = {name.lower(): name for name in registry}
    benchmarks: dict[str, str] = {}
    for bench in mteb.get_benchmarks():
        for name in [bench.name, *(getattr(bench, "aliases", None) or [])]:
            benchmarks[name.lower()] = name
    _save_names(tasks, benchmarks)
    return tasks, benchmarks


def _names_file() -> Path | None:
    """Where the installed mteb version's names are kept (None without mteb)."""
    from importlib import metadata

    try:
        version = metadata.version("mteb")
    except metadata.PackageNotFoundError:
        return None
    return cache_root() / f"mteb-names-{re.sub(r'[^A-Za-z0-9._-]', '_', version)}.json"


def _save_names(tasks: dict[str, str], benchmarks: dict[str, str]) -> None:
    path = _names_file()
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"tasks": sorted(tasks.values()), "benchmarks": benchmarks}))
    except OSError:
        pass  # only a shortcut for the next eval's name check: never a reason to fail this one


def known_names() -> Names | None:
    """mteb's names as :func:`_mteb_names` gives them, read without importing mteb when an earlier eval saved them.

    Otherwise mteb is imported (seconds; no torch, no model). None when mteb is not installed.
    """
    path = _names_file()
    if path is None:
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        tasks = {name.lower(): name for name in saved["tasks"]}
        benchmarks = {key: name for key, name in saved["benchmarks"].items()}
        return tasks, benchmarks
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return _mteb_names()


def _close(name: str, choices: Iterable[str]) -> str:
    # mteb knows hundreds of names: suggest close ones only, never the whole list.
    return suggest(name, choices, cutoff=0.6, fold_case=True, list_choices=False)


def check_names(benchmarks: Sequence[str] = (), tasks: Sequence[str] = (), names: Names | None = None) -> None:
    """Raise a one-line error for the first unknown benchmark or task name (``names``: default :func:`known_names`)."""
    names = names or known_names()
    if names is None:
        return  # no mteb: the evaluation itself says which extra to install
    task_names, bench_names = names
    for raw in benchmarks:
        name = raw.strip()
        if name.lower() not in {PAPER_BENCHMARK, *bench_names, *task_names}:
            hint = _close(name, [PAPER_BENCHMARK, *bench_names.values(), *task_names.values()])
            raise StRecipeError(f"unknown benchmark {name!r}{hint or ' (try paper-15 or MTEB(eng, v2))'}")
    for raw in tasks:
        for name in (n.strip() for n in raw.split(",")):
            if name and name.lower() not in task_names:
                raise StRecipeError(f"unknown mteb task {name!r}{_close(name, task_names.values())}")


def resolve_tasks(benchmarks: Sequence[str] = (), tasks: Sequence[str] = ()) -> list[AbsTask]:
    """mteb task objects for benchmark names (``paper-15``, any mteb benchmark or task name) and task names."""
    import mteb

    task_names, bench_names = _mteb_names()
    check_names(benchmarks, tasks, (task_names, bench_names))
    out: list[Any] = []
    for raw in benchmarks:
        name = raw.strip().lower()
        if name == PAPER_BENCHMARK:
            out += paper_15_tasks()
        elif name in bench_names:
            out += list(mteb.get_benchmark(bench_names[name]).tasks)
        else:
            out.append(mteb.get_task(task_names[name]))
    for raw in tasks:
        out += [mteb.get_task(task_names[n.strip().lower()]) for n in raw.split(",") if n.strip()]
    return out


def check_local_name(data: LocalData) -> None:
    """Refuse a local task named like an mteb task (its score would be filed where mteb's own belongs)."""
    task_names, _ = _mteb_names()
    if data.name.lower() in task_names:
        # Sharing a built-in task's name would file a local score where mteb's own result belongs (and
        # mteb would later serve one for the other), so a local copy needs a name of its own.
        official = task_names[data.name.lower()]
        raise StRecipeError(f"task file {data.source}: {data.name!r} is the mteb task {official}'s name; "
                            f"name the local copy differently, e.g. {official}-local=PATH")


def dedupe(tasks: list[Any]) -> list[Any]:
    """Tasks in order, each name once; a local task and an mteb task of the same name is an error."""
    seen: dict[str, Any] = {}
    for task in tasks:
        name = task.metadata.name
        if name in seen:
            if is_local_task(task) != is_local_task(seen[name]):
                raise StRecipeError(f"task name {name!r} is used twice; give the task file another name with NAME=PATH")
            continue
        seen[name] = task
    return list(seen.values())
