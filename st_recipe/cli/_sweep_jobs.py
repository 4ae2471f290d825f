"""``sweep``'s job, tracking, paper-grid and dry-run flags; checked before anything is written or submitted.

One decorator adds the flags to ``sweep``. It handles ``--grid paper`` and ``--dry-run`` itself and leaves the
plain grid to the command, with the job options in the click context (:func:`sweep_extras`).
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from st_recipe.errors import StRecipeError

_KEY = "st_recipe.sweeps.jobs"


def sweep_job_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add --grid, --dry-run, --executor, --max-parallel, --slurm-*, --job-setup, --report-to, --gpu-tflops, --mfu."""

    @functools.wraps(fn)
    def wrapper(*, grid: str | None, dry_run: bool, executor: str, max_parallel: int | None,
                slurm_partition: str | None, slurm_gpus_per_job: int | None, slurm_time: str | None,
                slurm_cpus_per_job: int | None, slurm_mem_gb: float | None, slurm_args: tuple[str, ...],
                job_setup: tuple[str, ...], report_to: str, gpu_tflops: float | None, mfu: float, **kwargs: Any) -> Any:
        from st_recipe.sweeps.executors import JobOptions, check_job_options, parse_slurm_args, parse_time
        from st_recipe.sweeps.plan import Throughput
        from st_recipe.training.tracking import parse_report_to

        jobs = check_job_options(JobOptions(
            executor=executor, max_parallel=max_parallel, partition=slurm_partition, gpus_per_job=slurm_gpus_per_job,
            time_min=parse_time(slurm_time), cpus_per_job=slurm_cpus_per_job, mem_gb=slurm_mem_gb,
            slurm_args=parse_slurm_args(slurm_args), setup=tuple(job_setup)))
        if not (0 < mfu <= 1) or (gpu_tflops is not None and gpu_tflops <= 0):
            raise StRecipeError("--mfu must be in (0, 1] and --gpu-tflops positive")
        extras = {"jobs": jobs, "report_to": parse_report_to(report_to)}
        click.get_current_context().meta[_KEY] = extras
        axes = [kwargs.get(k) for k in ("budgets", "models", "methods")]
        if grid is not None:
            if any(a is not None for a in axes) or kwargs.get("ranks") or kwargs.get("fractions"):
                raise StRecipeError("--grid paper sets the budgets, models and methods: drop --budgets/--models/"
                                    "--methods/--ranks/--fractions")
        elif any(a is None for a in axes):
            raise StRecipeError("give --budgets, --models and --methods, or --grid paper")
        if grid is None and not dry_run:
            return fn(**kwargs)
        return _planned_sweep(grid, dry_run, extras, Throughput(gpu_tflops, mfu), **kwargs)

    options = [
        click.option("--grid", type=click.Choice(["paper"]), default=None,
                     help="A named grid instead of --budgets/--models/--methods: 'paper' is the paper's six budgets x "
                          "Pythia 14M-2.8B x full, freeze, bias, LoRA (cells below one batch are left out)."),
        click.option("--dry-run", is_flag=True,
                     help="Print the cells, their planned FLOPs, peak memory, estimated GPU-hours and the job "
                          "resources; write and submit nothing."),
        click.option("--executor", type=click.Choice(["inprocess", "local", "slurm"]), default="inprocess",
                     show_default=True,
                     help="inprocess: cells one after another in this process. local / slurm: each cell its own "
                          "submitit job (local processes on this machine, or SLURM jobs)."),
        click.option("--max-parallel", type=int, default=None,
                     help="Cells running at once (local default 1; slurm: the job array's parallelism, default 64)."),
        click.option("--slurm-partition", default=None, help="SLURM partition."),
        click.option("--slurm-gpus-per-job", type=int, default=None,
                     help="GPUs per cell's job (slurm default 1; above 1 the cell runs accelerate launch over DDP)."),
        click.option("--slurm-time", default=None, help="Time limit per job: minutes, H:MM:SS, D-HH:MM:SS or 12h."),
        click.option("--slurm-cpus-per-job", type=int, default=None, help="CPUs per job."),
        click.option("--slurm-mem-gb", type=float, default=None, help="Memory per job in GB."),
        click.option("--slurm-arg", "slurm_args", multiple=True, metavar="KEY=VALUE",
                     help="Any other sbatch option, e.g. account=myproject or qos=high (repeatable)."),
        click.option("--job-setup", multiple=True, metavar="LINE",
                     help="A shell line each job runs first, e.g. 'source .venv/bin/activate' (repeatable)."),
        click.option("--report-to", default="none", show_default=True, metavar="TRACKERS",
                     help="Log every cell to these trackers (as train --report-to), under one group named after --out."),
        click.option("--gpu-tflops", type=float, default=None,
                     help="--dry-run: the GPU's peak TFLOP/s (default: an H100's for the recipe's precision)."),
        click.option("--mfu", type=float, default=0.3, show_default=True,
                     help="--dry-run: the share of the peak a training step reaches."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def sweep_extras() -> dict[str, Any]:
    """``jobs=`` and ``report_to=`` for :func:`st_recipe.sweeps.grid.sweep`, as the flags asked."""
    ctx = click.get_current_context(silent=True)
    return dict(ctx.meta.get(_KEY, {})) if ctx is not None else {}


def _planned_sweep(grid: str | None, dry_run: bool, extras: dict[str, Any], throughput: Any, **kw: Any) -> None:
    """--grid paper and/or --dry-run: plan every cell, print the plan, or run it."""
    from st_recipe.cli._common import check_batch_size
    from st_recipe.cli._lists import floats, ints, names
    from st_recipe.outputs import check_folder
    from st_recipe.sweeps.grid import prepare_sweep
    from st_recipe.sweeps.plan import paper_sweep, plan_rows

    check_batch_size(kw["batch_size"])
    check_folder(kw["out"], "--out")
    common = dict(data=kw["data"], batch_size=kw["batch_size"], max_seq_length=kw["max_seq_length"],
                  learning_rate=kw["learning_rate"])
    skipped: list[str] = []
    if grid == "paper":
        planned, spec, skipped = paper_sweep(kw["out"], **common)
    else:
        planned, spec = prepare_sweep(floats(kw["budgets"], "--budgets"), names(kw["models"], "--models"),
                                      names(kw["methods"], "--methods"), out=kw["out"],
                                      ranks=ints(kw["ranks"], "--ranks") if kw["ranks"] else None,
                                      fractions=floats(kw["fractions"], "--fractions") if kw["fractions"] else None,
                                      **common)
    jobs = extras["jobs"]
    if dry_run:
        rows = plan_rows(planned, throughput)
        click.echo(dry_run_text(rows, jobs.resources(), throughput, skipped))
        return
    from st_recipe.cli._common import quiet_libraries
    from st_recipe.data.sources import check_source
    from st_recipe.outputs import check_can_create
    from st_recipe.sweeps.grid import sweep

    check_source(kw["data"], load=False)
    check_can_create(kw["out"], "--out")
    quiet_libraries()
    finish_sweep(lambda: sweep([], [], [], out=kw["out"], data=kw["data"], quiet=kw["quiet"], prepared=(planned, spec),
                               **extras), kw["out"])


def finish_sweep(run: Callable[[], list[dict[str, Any]]], out: str) -> None:
    """Run the sweep, print its finished cells, and name each failed one with its log (exit 1 when any failed)."""
    from st_recipe.cli._common import format_table
    from st_recipe.sweeps.grid import SweepIncomplete

    failures: list[Any] = []
    try:
        rows = run()
    except SweepIncomplete as exc:
        rows, failures = exc.rows, exc.failures
    table = [("cell", "pairs", "spent/budget", "train loss", "held-out loss", "top-1", "wall s")]
    for r in rows:
        table.append((r["cell"], f"{r['pairs']:,}", f"{r['spent_fraction']:.3f}", f"{r['train_loss']:.4f}",
                      f"{r['heldout_loss']:.4f}", f"{r['heldout_top1']:.1%}", f"{r['wall_time_s']:.0f}"))
    click.echo(format_table(table))
    click.echo(f"{len(rows)} cells in {out}; next: st-recipe fit {out}")
    if failures:
        for failure in failures:
            click.echo(f"failed: {failure.line()}", err=True)
        click.echo(f"{len(failures)} cell(s) failed; re-run the same command to retry them", err=True)
        sys.exit(1)


def dry_run_text(rows: list[dict[str, Any]], resources: dict[str, Any], throughput: Any,
                 skipped: list[str] | None = None) -> str:
    """The table ``sweep --dry-run`` prints: cells, FLOPs, memory, GPU-hours, totals and the job resources."""
    from st_recipe.cli._common import format_table
    from st_recipe.costing.flops import format_flops
    from st_recipe.costing.memory import format_bytes

    table = [("cell", "model", "method", "pairs", "planned FLOPs", "peak memory/GPU", "GPU-hours")]
    for r in rows:
        mem = format_bytes(r["memory_bytes"]) if r["memory_bytes"] is not None else "-"
        table.append((r["cell"], r["model"], r["method"], f"{r['pairs']:,}", format_flops(r["flops"]),
                      mem + ("" if r["fits"] else " (over)"), f"{r['gpu_hours']:.3g}"))
    lines = [format_table(table), ""]
    total_flops = sum(r["flops"] for r in rows)
    lines.append(f"{len(rows)} cells, {format_flops(total_flops)} FLOPs planned, about "
                 f"{sum(r['gpu_hours'] for r in rows):,.1f} GPU-hours in all; {throughput.describe()}")
    over = [r["cell"] for r in rows if not r["fits"]]
    if over:
        lines.append(f"{len(over)} cell(s) need more than {throughput.gpu_memory_gb:g} GB per GPU: use --mini-batch-size "
                     f"(GradCache) or more GPUs per job, e.g. {over[0]}")
    hours = resources.get("time_min", 0) / 60 * max(1, resources.get("gpus_per_job", 1))
    slow = [r["cell"] for r in rows if hours and r["gpu_hours"] > hours]
    if slow:
        lines.append(f"{len(slow)} cell(s) are estimated to run longer than the job's time limit, e.g. {slow[0]}: "
                     "raise --slurm-time (a timed-out cell resumes from its checkpoints on the next run)")
    if skipped:
        lines.append(f"left out: {len(skipped)} cell(s) whose budget buys less than one batch, e.g. {skipped[0]}")
    lines.append("job resources: " + ", ".join(f"{k}={v}" for k, v in resources.items()))
    lines.append("nothing was submitted (--dry-run)")
    return "\n".join(lines)
