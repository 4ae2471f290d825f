"""What an evaluation produced: per-task main scores, averages, failures, and the saved summary JSON.

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
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_recipe._io import atomic_write_text
from st_recipe._text import format_table

SUMMARY_SCHEMA = "st-recipe/eval-summary/1"


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
    # Embeddings cut to their first D dimensions (``eval --truncate-dim D``); None for the full embedding.
    truncate_dim: int | None = None

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
        if self.truncate_dim is not None:
            out["truncate_dim"] = self.truncate_dim
        out["base"] = None if self.base is None else {k: v for k, v in self.base.to_dict().items() if k != "base"}
        return out

    def to_json(self) -> str:
        """The summary as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def format(self) -> str:
        """A readable table: per-task main score (and base + difference), per-type and overall averages."""
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
        if self.truncate_dim is not None:
            title += f" (embeddings truncated to {self.truncate_dim} dims)"
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


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite int or float (never a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# ------------------------------------------------------------------------------- the saved summary file


def save_summary(summary: EvalSummary, target: Path) -> None:
    """Merge ``summary`` into the summary file ``target`` per task (module docstring) and write it atomically."""
    saved = _merge_saved(summary, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(saved, indent=2, ensure_ascii=False) + "\n")
    summary.summary_path = str(target)


def _merge_saved(summary: EvalSummary, target: Path) -> dict[str, Any]:
    """The summary JSON to save: this run's outcome per task laid over the earlier file's (module docstring)."""
    previous: Any = None
    if target.is_file():
        try:
            previous = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
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
        if not isinstance(row, dict) or not isinstance(row.get("task"), str) or finite_number(row.get("main_score")) is None:
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
