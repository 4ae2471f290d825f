"""Sweep cells as scheduler jobs through submitit: SLURM on a cluster, its local executor on one machine.

Each cell is one job (its own process; with ``gpus_per_job`` > 1 an ``accelerate launch`` of ``st-recipe train``
over the shipped DDP config). The job appends its own row to ``results.jsonl`` when it finishes (under a lock,
one write), so ``fit`` works on what has finished even while the driver is gone. Beside each cell's run dir,
``<cell>.job.json`` names the job that owns it; a re-run skips finished cells, leaves cells whose job is still
pending or running alone (it waits for them), and resubmits failed or vanished ones. ``train`` itself holds
``<cell>.lock`` while it runs, so a cell never trains twice at once even if two drivers race.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_recipe._io import pid_alive
from st_recipe.sweeps.executors import JobOptions, local_gpus, make_executor

logger = logging.getLogger("st_recipe")

JOB_SUFFIX = ".job.json"
JOBS_DIR = "jobs"  # submitit's folder: pickles and each job's stdout/stderr logs
_SLURM_ALIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING"}
UNKNOWN_GRACE_S = 600  # sacct may not know a job just submitted; after this an unknown job counts as vanished


@dataclass(frozen=True)
class CellJob:
    """Everything one cell's job needs (pickled by submitit): the grid cell, its recipe, data and tracking."""

    root: str
    cell: Any  # st_recipe.sweeps.grid.Cell
    recipe: dict[str, Any]
    data: str
    report_to: tuple[str, ...] = ()
    gpus: int = 0

    @property
    def run_dir(self) -> Path:
        """The cell's run dir."""
        return Path(self.root) / "cells" / self.cell.name


def run_cell(job: CellJob) -> dict[str, Any]:
    """A job's body: train the cell (resuming its checkpoints), then append its row to results.jsonl."""
    from st_recipe.run import RUN_RECORD, read_run
    from st_recipe.sweeps.results import append_result, result_row

    if not (job.run_dir / RUN_RECORD).exists():
        if job.gpus > 1:
            _launch_distributed(job)
        else:
            from st_recipe.planning.recipes import Recipe
            from st_recipe.training import TrainOptions, checkpoint_dir, train

            options = TrainOptions(out=job.run_dir, resume=checkpoint_dir(job.run_dir).exists(), quiet=True,
                                   tracking=cell_tracking(Path(job.root), job.cell.name, job.report_to))
            train(Recipe.from_dict(job.recipe), job.data, options)
    row = result_row(job.cell, read_run(job.run_dir))
    append_result(Path(job.root), row)
    return row


def cell_tracking(root: Path, name: str, report_to: tuple[str, ...]) -> Any:
    """One run per cell, all under the sweep's group (W&B group, MLflow experiment, Trackio project, one TB folder)."""
    if not report_to:
        return None
    from st_recipe.training.tracking import Tracking

    return Tracking(tuple(report_to), run_name=name, group=root.resolve().name,
                    tensorboard_dir=str(root / "tensorboard" / name))


def _launch_distributed(job: CellJob) -> None:
    """Several GPUs in one job: ``accelerate launch`` over the shipped DDP config, one process per GPU."""
    import yaml

    from st_recipe.launch import launch_command
    from st_recipe.training import checkpoint_dir

    recipe_file = job.run_dir.with_name(job.cell.name + ".recipe.yaml")
    recipe_file.write_text(yaml.safe_dump(job.recipe, sort_keys=False), encoding="utf-8")
    args = ["--recipe", str(recipe_file), "--data", job.data, "--out", str(job.run_dir), "--quiet",
            "--run-name", job.cell.name]
    if job.report_to:
        args += ["--report-to", ",".join(job.report_to)]
    if checkpoint_dir(job.run_dir).exists():
        args.append("--resume")
    command = launch_command("ddp", args, model=job.recipe.get("model"), processes=job.gpus,
                             bf16=job.recipe.get("precision") == "bf16")
    subprocess.run(shlex.split(command), check=True)


# ------------------------------------------------------------------------------------------ the job marker


@dataclass
class Marker:
    """``cells/<cell>.job.json``: the job that owns the cell now, and every job submitted for it."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, root: Path, name: str) -> Marker:
        """The cell's marker (empty when the cell was never submitted)."""
        path = root / "cells" / (name + JOB_SUFFIX)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        return cls(path, data if isinstance(data, dict) else {})

    def record(self, executor: str, job: Any, devices: list[int]) -> None:
        """Write the newly submitted job (atomically: a reader never sees half a marker)."""
        from st_recipe._io import atomic_write_text

        entry = {"executor": executor, "job_id": str(job.job_id), "submitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "log": str(job.paths.stderr), "folder": str(job.paths.folder), "devices": devices,
                 "submitted_at": time.time()}
        self.data = {**entry, "jobs": [*self.data.get("jobs", []), entry]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(self.data, indent=2))

    def alive(self) -> bool:
        """True while the marker's job may still run the cell (pending, running, or its train holds the lock)."""
        from st_recipe._io import OutputLock

        if OutputLock(self.path.with_name(self.path.name[: -len(JOB_SUFFIX)])).holder() is not None:
            return True
        job_id = self.data.get("job_id")
        if not job_id:
            return False
        if self.data.get("executor") == "local":
            return pid_alive(int(job_id))
        import submitit

        state = str(submitit.SlurmJob(folder=self.data.get("folder", "."), job_id=job_id).state).upper()
        if state == "UNKNOWN":
            return time.time() - self.data.get("submitted_at", 0.0) < UNKNOWN_GRACE_S
        return state in _SLURM_ALIVE


# ------------------------------------------------------------------------------------------ the driver


@dataclass(frozen=True)
class CellFailure:
    """A cell whose job ended without a finished run dir: what went wrong and where its log is."""

    cell: str
    error: str
    log: str | None

    def line(self) -> str:
        """One line for the terminal."""
        return f"{self.cell}: {self.error}" + (f" (log: {self.log})" if self.log else "")


@dataclass
class _Active:
    job: CellJob
    marker: Marker
    handle: Any = None  # the submitit job when this driver submitted it; None for a job adopted from an earlier run
    devices: list[int] = field(default_factory=list)  # local: the GPUs this job was given


def run_jobs(planned: list[tuple[Any, Any]], root: Path, data: str, opts: JobOptions, *,
             report_to: tuple[str, ...] = (), say: Any = None) -> list[CellFailure]:
    """Run every unfinished cell as a job and wait for all of them; failures are returned, never raised.

    Cells whose job from an earlier run is still pending or running are waited for, not resubmitted.
    """
    from st_recipe.run import RUN_RECORD

    say = say or (lambda text: None)
    executor = make_executor(opts, root / JOBS_DIR, root.resolve().name)
    todo: list[CellJob] = []
    active: list[_Active] = []
    for cell, recipe in planned:
        job = CellJob(str(root), cell, recipe.to_dict(), data, tuple(report_to), opts.gpus)
        if (job.run_dir / RUN_RECORD).exists():
            continue
        marker = Marker.read(root, cell.name)
        if marker.data and marker.alive():
            say(f"{cell.name}: job {marker.data.get('job_id')} from an earlier run is still going; waiting for it")
            active.append(_Active(job, marker))
        else:
            todo.append(job)
    if opts.executor == "slurm" and todo:
        # The scheduler runs at most --max-parallel of the array at once: submit every cell now.
        with executor.batch():
            handles = [executor.submit(run_cell, job) for job in todo]
        active += [_submitted(job, handle, opts, say) for job, handle in zip(todo, handles)]
        todo = []
    failures: list[CellFailure] = []
    # Local jobs on a GPU machine: each running job gets GPUs of its own (submitit's local executor would give
    # every job the first ones).
    gpus = opts.gpus if opts.executor == "local" else 0
    used = {d for a in active for d in a.marker.data.get("devices", [])}
    free = [d for d in local_gpus() if d not in used] if gpus else []
    while todo or active:
        while todo and len(active) < opts.parallel and len(free) >= gpus:
            job, devices = todo.pop(0), free[:gpus]
            del free[:gpus]
            if gpus:
                executor.update_parameters(visible_gpus=devices, gpus_per_node=gpus)
            active.append(_submitted(job, executor.submit(run_cell, job), opts, say, devices))
        time.sleep(opts.poll_s or (30.0 if opts.executor == "slurm" else 1.0))
        for item in [a for a in active if _ended(a)]:
            active.remove(item)
            free += item.devices or (item.marker.data.get("devices", []) if gpus else [])
            failure = _outcome(item)
            if failure is None:
                say(f"{item.job.cell.name}: finished")
            else:
                failures.append(failure)
                say(f"{failure.line()}")
    return failures


def _submitted(job: CellJob, handle: Any, opts: JobOptions, say: Any, devices: list[int] | None = None) -> _Active:
    marker = Marker.read(Path(job.root), job.cell.name)
    marker.record(opts.executor, handle, devices or [])
    say(f"{job.cell.name}: submitted as {opts.executor} job {handle.job_id}" + (f" on GPU {devices}" if devices else ""))
    return _Active(job, marker, handle, list(devices or []))


def _ended(item: _Active) -> bool:
    if item.handle is not None:
        try:
            return bool(item.handle.done())
        except Exception:  # noqa: BLE001 - a scheduler query that fails says nothing about the job; ask again
            return False
    return not item.marker.alive()


def _outcome(item: _Active) -> CellFailure | None:
    """None when the cell finished; else what its job left behind."""
    from st_recipe.run import RUN_RECORD

    if (item.job.run_dir / RUN_RECORD).exists():
        return None
    log = item.marker.data.get("log")
    error = "its job ended without finishing the cell"
    if item.handle is not None:
        try:
            exc = item.handle.exception()
        except Exception as err:  # noqa: BLE001 - killed jobs leave no result to read
            exc = err
        if exc is not None:
            error = _last_error(str(exc)) or type(exc).__name__
    return CellFailure(item.job.cell.name, error, log)


def _last_error(text: str) -> str | None:
    """The exception line of a job's traceback (``StRecipeError: ...``), without the module path."""
    import re

    found = re.findall(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Interrupt|Exit)\b.*)$", text, flags=re.M)
    return found[-1].strip() if found else None
