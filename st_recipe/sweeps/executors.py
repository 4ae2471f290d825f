"""How sweep cells run as jobs: the options (executor, parallelism, resources) and the submitit executor for them.

``local`` runs each job as a process on this machine (one GPU set per running job when it has GPUs);
``slurm`` writes an sbatch script per job array with the resources the flags ask for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st_recipe.errors import StRecipeError

EXECUTORS = ("inprocess", "local", "slurm")


@dataclass(frozen=True)
class JobOptions:
    """How sweep cells run: in this process (default), as local jobs, or as SLURM jobs."""

    executor: str = "inprocess"
    max_parallel: int | None = None  # local: cells at once (default 1); slurm: the array's parallelism
    partition: str | None = None
    gpus_per_job: int | None = None  # default 1 (local: 1 when this machine has GPUs, else 0)
    time_min: int | None = None  # the job's time limit (slurm default 24 h; local: no practical limit)
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    slurm_args: tuple[tuple[str, str], ...] = ()  # extra sbatch options, e.g. (("account", "proj"), ("qos", "high"))
    setup: tuple[str, ...] = ()  # shell lines each job runs first (module load ..., source venv/bin/activate)
    poll_s: float | None = None  # how often the driver looks at its jobs (local 1 s; slurm 30 s, to spare sacct)

    @property
    def jobs(self) -> bool:
        """True when cells run as separate jobs."""
        return self.executor != "inprocess"

    @property
    def parallel(self) -> int:
        """How many cells run at once (SLURM: how many array tasks the scheduler runs at once)."""
        return self.max_parallel or (1 if self.executor == "local" else 64)

    @property
    def gpus(self) -> int:
        """GPUs each job asks for."""
        if self.gpus_per_job is not None:
            return self.gpus_per_job
        return 1 if self.executor == "slurm" or (self.executor == "local" and local_gpus()) else 0

    def resources(self) -> dict[str, Any]:
        """What each job asks the scheduler for (printed by --dry-run)."""
        out: dict[str, Any] = {"executor": self.executor, "parallel": self.parallel if self.jobs else 1}
        if self.jobs:
            out.update(gpus_per_job=self.gpus, time_min=self.timeout_min())
        if self.executor == "slurm":
            out.update(partition=self.partition, cpus_per_job=self.cpus_per_job, mem_gb=self.mem_gb,
                       extra=dict(self.slurm_args) or None)
        return {k: v for k, v in out.items() if v is not None}

    def timeout_min(self) -> int:
        """The job's time limit in minutes."""
        return self.time_min or (24 * 60 if self.executor == "slurm" else 7 * 24 * 60)


def check_job_options(opts: JobOptions) -> JobOptions:
    """One-line errors for impossible settings (before anything is written or submitted)."""
    if opts.executor not in EXECUTORS:
        raise StRecipeError(f"--executor must be one of {', '.join(EXECUTORS)}, not {opts.executor!r}")
    for name, value in (("--max-parallel", opts.max_parallel), ("--slurm-gpus-per-job", opts.gpus_per_job),
                        ("--slurm-time", opts.time_min), ("--slurm-cpus-per-job", opts.cpus_per_job)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < (0 if "gpus" in name else 1)):
            raise StRecipeError(f"{name} must be a positive integer, not {value!r}")
    if opts.executor == "local" and opts.gpus > len(local_gpus()):
        raise StRecipeError(f"--slurm-gpus-per-job {opts.gpus}: this machine has {len(local_gpus())} GPU(s) for local jobs")
    if opts.executor != "slurm" and (opts.partition or opts.slurm_args or opts.cpus_per_job or opts.mem_gb):
        raise StRecipeError("--slurm-* options need --executor slurm")
    if not opts.jobs and (opts.max_parallel or opts.gpus_per_job or opts.time_min or opts.setup):
        raise StRecipeError("--max-parallel, --slurm-gpus-per-job, --slurm-time and --job-setup need --executor local or slurm")
    return opts


def parse_time(text: str | None) -> int | None:
    """``90``, ``1:30:00``, ``2-00:00:00`` or ``12h`` -> minutes."""
    if text is None:
        return None
    t = text.strip().lower()
    try:
        if t.endswith("h"):
            return max(1, round(float(t[:-1]) * 60))
        days, _, rest = t.rpartition("-")
        parts = [int(p) for p in rest.split(":")]
        if len(parts) > 3 or any(p < 0 for p in parts):
            raise ValueError
        h, m, s = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
        minutes = (int(days) if days else 0) * 1440 + h * 60 + m + (1 if s else 0)
    except ValueError:
        raise StRecipeError(f"--slurm-time {text!r}: give minutes, H:MM:SS, D-HH:MM:SS or e.g. 12h") from None
    if minutes < 1:
        raise StRecipeError(f"--slurm-time {text!r} is shorter than a minute")
    return minutes


def parse_slurm_args(items: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` sbatch options (``account=proj``) -> pairs."""
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise StRecipeError(f"--slurm-arg {item!r}: give KEY=VALUE, e.g. account=myproject")
        out.append((key.strip().lstrip("-").replace("-", "_"), value.strip()))
    return tuple(out)


def make_executor(opts: JobOptions, folder: Path, name: str) -> Any:
    """The submitit executor for ``opts`` (jobs' pickles and logs under ``folder``)."""
    import submitit

    if opts.executor == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=opts.timeout_min(), gpus_per_node=opts.gpus,
                                   setup=list(opts.setup))
        return executor
    try:
        executor = submitit.SlurmExecutor(folder=folder)
    except RuntimeError as exc:  # no srun here: not a SLURM machine
        raise StRecipeError(f"--executor slurm: {exc} Run the sweep on a login node, or use --executor local") from None
    params: dict[str, Any] = dict(job_name=name, time=opts.timeout_min(), nodes=1, ntasks_per_node=1,
                                  array_parallelism=opts.parallel, setup=list(opts.setup))
    if opts.gpus:
        params["gpus_per_node"] = opts.gpus
    for key, value in (("partition", opts.partition), ("cpus_per_task", opts.cpus_per_job),
                       ("mem", f"{int(opts.mem_gb * 1024)}M" if opts.mem_gb else None)):
        if value is not None:
            params[key] = value
    if opts.slurm_args:
        params["additional_parameters"] = dict(opts.slurm_args)
    executor.update_parameters(**params)
    return executor


def local_gpus() -> list[int]:
    """This machine's GPUs for local jobs: CUDA_VISIBLE_DEVICES when set, else what ``nvidia-smi -L`` lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        items = [v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1"]
        return [int(v) for v in items] if all(v.isdigit() for v in items) else list(range(len(items)))
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return list(range(sum(1 for line in listed.splitlines() if line.startswith("GPU "))))
