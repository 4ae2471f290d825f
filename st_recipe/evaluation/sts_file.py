"""The ``sts`` kind of local task file: one jsonl file of scored sentence pairs, an optional header line first.

Each line is ``{"sentence1": str, "sentence2": str, "score": number}``; a first line holding only header
keys (``score_range`` or ``min_score``/``max_score``, ``name``, ``language``) declares the range scores
must lie in, the task's name and its language.
"""

from __future__ import annotations

import functools
from typing import Any

from st_recipe._io import read_jsonl
from st_recipe.errors import StRecipeError
from st_recipe.evaluation.local_data import LocalData, LocalKind, TaskFile, file_hash, score_range, task_name
from st_recipe.evaluation.summary import finite_number

_STS_HEADER_KEYS = {"score_range", "min_score", "max_score", "name", "language"}


def is_sts_header(obj: dict[str, Any]) -> bool:
    """True for an STS file's optional first line (header keys only, no sentences)."""
    return "sentence1" not in obj and "sentence2" not in obj and bool(set(obj) & _STS_HEADER_KEYS) and set(obj) <= _STS_HEADER_KEYS


def load_sts(tf: TaskFile) -> LocalData:
    """Read and check an STS jsonl file (one-line errors with the line number)."""
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
        if first and is_sts_header(obj):
            first = False
            if "score_range" in obj:
                declared = score_range(obj["score_range"], f"{path}:{number}")
            elif "min_score" in obj or "max_score" in obj:
                declared = score_range([obj.get("min_score"), obj.get("max_score")], f"{path}:{number}")
            header_name = obj.get("name") if isinstance(obj.get("name"), str) else None
            language = str(obj.get("language") or language)
            continue
        first = False
        for key in ("sentence1", "sentence2"):
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise StRecipeError(f"{path}:{number}: {key!r} must be a non-empty string")
        score = finite_number(obj.get("score"))
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
    return LocalData(
        name=task_name(tf.name, header_name, path),
        kind="sts",
        language=language,
        revision=file_hash([path]),
        source=str(path),
        sts={"sentence1": s1, "sentence2": s2, "score": scores},
        # The range only rescales gold scores before a correlation, so the data's own span is exact when none is declared.
        score_range=declared or (min(scores), max(scores)),
    )


@functools.lru_cache(maxsize=1)
def _task_class() -> type:
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.sts import AbsTaskSTS

    class LocalSTSTask(AbsTaskSTS):
        """An STS task whose pairs come from a local jsonl file."""

        st_recipe_data: LocalData

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            """Build the test split from the parsed file (no download)."""
            if self.data_loaded:
                return
            self.dataset = DatasetDict({"test": Dataset.from_dict(self.st_recipe_data.sts)})
            self.data_loaded = True

    return LocalSTSTask


def _score_bounds(data: LocalData) -> dict[str, Any]:
    low, high = data.score_range  # type: ignore[misc]
    return {"min_score": low, "max_score": high}


STS = LocalKind(load=load_sts, task_class=_task_class, task_type="STS", main_score="cosine_spearman", label="STS",
                one_file=True, task_attrs=_score_bounds)
