"""mteb task names: paper-15, benchmarks and task names, suggestions for unknown ones."""

from __future__ import annotations

import pytest

from st_recipe.errors import StRecipeError
from st_recipe.evaluation import PAPER_15_TASKS, resolve_tasks


def test_paper_15_is_exactly_the_papers_tasks_english_and_offline() -> None:
    tasks = resolve_tasks(["paper-15"])
    assert [t.metadata.name for t in tasks] == list(PAPER_15_TASKS) and len(tasks) == 15
    by_name = {t.metadata.name: t for t in tasks}
    assert by_name["STS22"].hf_subsets == ["en"]
    assert by_name["AmazonReviewsClassification"].hf_subsets == ["en"]
    assert all(t.eval_splits == ["test"] for t in tasks)
    assert all(not t.data_loaded for t in tasks)  # metadata only: nothing was downloaded
    types = {t.metadata.type for t in tasks}
    assert types == {"Clustering", "Retrieval", "STS", "Summarization", "Classification", "PairClassification", "Reranking"}


def test_benchmark_and_task_names_resolve() -> None:
    assert len(resolve_tasks(["MTEB(eng, v2)"])) > 20
    # a task name works as a benchmark; task names are case-insensitive and comma-separated
    assert [t.metadata.name for t in resolve_tasks(["STS12"], ["sick-r,biosses", "STS12"])] == ["STS12", "SICK-R", "BIOSSES", "STS12"]


@pytest.mark.parametrize(
    ("benchmarks", "tasks", "expected"),
    [(["paper15"], [], "paper-15"), (["MTEB(eng v2)"], [], "MTEB(eng, v2)"), ([], ["Banking77Clasification"], "Banking77Classification")],
)
def test_unknown_names_suggest_close_ones(benchmarks: list[str], tasks: list[str], expected: str) -> None:
    with pytest.raises(StRecipeError, match="did you mean") as info:
        resolve_tasks(benchmarks, tasks)
    assert expected in str(info.value) and "\n" not in str(info.value)
