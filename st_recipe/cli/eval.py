"""``st-recipe eval``: mteb (or local task files) on a run dir, an ST folder or a Hub id."""

from __future__ import annotations

import sys

import click

from st_recipe.cli._common import check_min, quiet_libraries
from st_recipe.errors import StRecipeError


@click.command("eval")
@click.argument("model")
@click.option("--benchmark", "benchmarks", multiple=True, metavar="NAME",
              help="paper-15 (the paper's 15 tasks), an mteb benchmark such as 'MTEB(eng, v2)', or a task name "
                   "(repeatable; default paper-15 when nothing else is chosen).")
@click.option("--tasks", "tasks", multiple=True, metavar="T1,T2", help="mteb task names, comma-separated (repeatable).")
@click.option("--task-file", "task_files", multiple=True, metavar="[NAME=][sts:|retrieval:]PATH",
              help="A local task (repeatable): an STS jsonl (sentence1, sentence2, score; optional first-line header "
                   '{"score_range": [0, 5]}), a retrieval folder/spec (queries.jsonl, corpus.jsonl, qrels .jsonl/.tsv), '
                   "or builtin:sts / builtin:retrieval (offline tasks from the builtin pairs' held-out split).")
@click.option("--score-range", default=None, metavar="LOW,HIGH",
              help="Declared score range for STS task files (overrides a header); scores outside it are an error.")
@click.option("--batch-size", type=int, default=32, show_default=True,
              help="Encode batch size (halved automatically on out-of-memory).")
@click.option("--cache", "cache_dir", default=None, metavar="DIR",
              help="mteb result cache (default: <run dir>/mteb_results, else ~/.cache/st_recipe/mteb).")
@click.option("--compare-base", is_flag=True,
              help="Also evaluate the run's base model (st_recipe.json recipe.model, same pooling) and show the difference.")
@click.option("--overwrite", is_flag=True, help="Re-run tasks that already have cached results.")
@click.option("--model-name", default=None, metavar="ORG/NAME", help="File results under this name instead of the derived one.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary JSON instead of the table.")
@click.option("--truncate-dim", type=int, default=None, metavar="D",
              help="Evaluate the first D embedding dimensions only (Matryoshka models); filed separately "
                   "(mteb experiment truncate_dim=D, eval_results_dimD.json).")
def eval_cmd(model: str, benchmarks: tuple[str, ...], tasks: tuple[str, ...], task_files: tuple[str, ...],
             score_range: str | None, batch_size: int, cache_dir: str | None, compare_base: bool, overwrite: bool,
             model_name: str | None, as_json: bool, truncate_dim: int | None = None) -> None:
    """Evaluate MODEL (a run dir, a sentence-transformers folder or a Hub id) with mteb; exit 1 if any task failed."""
    import warnings

    from st_recipe.evaluation import evaluate, parse_task_file
    from st_recipe.evaluation.taskfiles import load_task_file
    from st_recipe.evaluation.tasks import check_names
    from st_recipe.evaluation.width import check_truncate_dim
    from st_recipe.models.args import check_model
    from st_recipe.outputs import check_folder

    span = None
    if score_range is not None:
        parts = score_range.replace(":", ",").split(",")
        try:
            span = (float(parts[0]), float(parts[1])) if len(parts) == 2 else None
        except ValueError:
            span = None
        if span is None:
            raise StRecipeError(f"--score-range must look like LOW,HIGH (e.g. 0,5), not {score_range!r}")
    # mteb and the model take tens of seconds to import and load: check what is cheap to check first.
    check_min(batch_size, "--batch-size", 1)
    check_min(truncate_dim, "--truncate-dim", 1)
    check_model(model, encoder=True, compare_base=compare_base, instead="pass DIR as MODEL")
    if cache_dir is not None:
        check_folder(cache_dir, "--cache")
    check_eval_writes(model, cache_dir)
    for spec in task_files:
        # The files are read and checked here, before mteb and the model take tens of seconds to load.
        load_task_file(parse_task_file(spec, span))
    check_truncate_dim(model, truncate_dim)  # from the model's config files, before its weights load
    # mteb's names, saved by an earlier eval (else mteb alone, without torch): before the model and its libraries.
    check_names(benchmarks, tasks)
    # Superseded-task notices, retry logs and dataset map bars would drown the summary.
    warnings.filterwarnings("ignore", message=r".*is superseded by.*")
    quiet_libraries("mteb", "datasets", "sentence_transformers", "huggingface_hub")
    summary = evaluate(model, benchmarks=benchmarks, tasks=tasks, task_files=task_files, batch_size=batch_size,
                       cache_dir=cache_dir, compare_base=compare_base, overwrite=overwrite, model_name=model_name,
                       progress=sys.stderr.isatty(), score_range=span, truncate_dim=truncate_dim)
    if as_json:
        click.echo(summary.to_json())
        base_failed = [dict(f, task=f"{f['task']} (base)") for f in summary.base.failed] if summary.base else []
        for item in summary.failed + base_failed:
            click.echo(f"failed: {item['task']}: {item['error']}", err=True)
    else:
        click.echo(summary.format())
    click.echo(f"summary saved to {summary.summary_path}", err=True)
    if not summary.ok:
        sys.exit(1)


def check_eval_writes(model: str, cache_dir: str | None) -> None:
    """Where eval will write (the --cache folder; a run dir's own results) can be written: else one line, now."""
    import os

    from st_recipe.outputs import check_can_create
    from st_recipe.run import RunDir

    if cache_dir is not None:
        check_can_create(cache_dir, "--cache", inside=True)
    run = RunDir(os.path.expanduser(model.strip()))
    if run.is_run():
        run.check_eval_writable()
