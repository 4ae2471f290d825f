"""MTEB evaluation of run dirs and models: named benchmarks (the paper's 15 tasks), local task files, a result cache.

Every score goes through mteb's own ``mteb.evaluate`` and ``ResultCache``, filed under the model's true
name and revision, so re-running skips finished tasks and two models never share a folder. A summary is
printed and saved as JSON for ``publish`` to read; its layout, and how it accumulates over runs task by
task, is described in :mod:`st_recipe.evaluation.summary`.

Modules, each one stage of an evaluation (none imports torch, mteb or sentence-transformers at import):

* :mod:`~st_recipe.evaluation.summary`: :class:`TaskScore`, :class:`EvalSummary`, the saved summary file.
* :mod:`~st_recipe.evaluation.taskfiles`: local task files and the registry of their kinds
  (:mod:`~st_recipe.evaluation.sts_file`, :mod:`~st_recipe.evaluation.retrieval_files`, the shared types in
  :mod:`~st_recipe.evaluation.local_data`).
* :mod:`~st_recipe.evaluation.tasks`: mteb task names: paper-15, benchmarks, suggestions.
* :mod:`~st_recipe.evaluation.models`: the model to evaluate, its name and revision, its base model.
* :mod:`~st_recipe.evaluation.runner`: running mteb (cache, OOM backoff, offline failures) and :func:`evaluate`.
"""

from __future__ import annotations

from st_recipe.evaluation.local_data import LocalData, LocalKind, TaskFile, is_local_task
from st_recipe.evaluation.models import LoadedModel, folder_revision, load_model
from st_recipe.evaluation.runner import encode_with_backoff, evaluate, is_out_of_memory
from st_recipe.evaluation.summary import SUMMARY_SCHEMA, EvalSummary, TaskScore
from st_recipe.evaluation.taskfiles import (
    BUILTIN_TASKS,
    LOCAL_KINDS,
    TASK_KINDS,
    build_local_task,
    load_task_file,
    parse_task_file,
)
from st_recipe.evaluation.tasks import PAPER_15_TASKS, PAPER_BENCHMARK, paper_15_tasks, resolve_tasks

__all__ = [
    "BUILTIN_TASKS",
    "LOCAL_KINDS",
    "PAPER_15_TASKS",
    "PAPER_BENCHMARK",
    "SUMMARY_SCHEMA",
    "TASK_KINDS",
    "EvalSummary",
    "LoadedModel",
    "LocalData",
    "LocalKind",
    "TaskFile",
    "TaskScore",
    "build_local_task",
    "encode_with_backoff",
    "evaluate",
    "folder_revision",
    "is_local_task",
    "is_out_of_memory",
    "load_model",
    "load_task_file",
    "paper_15_tasks",
    "parse_task_file",
    "resolve_tasks",
]
