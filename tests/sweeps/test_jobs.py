"""Sweep cells as submitit jobs on this machine: killed mid-way, re-run, each cell trained exactly once, then fit;
failed cells reported with their logs; the paper grid's dry run; job options checked before anything runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from st_recipe import StRecipeError
from st_recipe.cli import main

REPO = Path(__file__).resolve().parents[2]


def _cells_with_markers(out: Path) -> list[Path]:
    return sorted((out / "cells").glob("*.job.json")) if (out / "cells").is_dir() else []


def test_local_jobs_killed_midway_rerun_each_cell_once_then_fit(tiny_neox_dir, tmp_path):
    pytest.importorskip("submitit")
    from st_recipe.data import load_pairs

    pairs = load_pairs("builtin")
    data = tmp_path / "pairs.jsonl"  # small data: each job's held-out scoring stays short
    data.write_text("".join(json.dumps({"anchor": a, "positive": p}) + "\n"
                            for a, p in zip(pairs.anchors[:240], pairs.positives[:240])))
    out = tmp_path / "sweep"
    args = ["sweep", "--budgets", "1e9,2e9", "--models", str(tiny_neox_dir), "--methods", "full,bias", "--out", str(out),
            "--data", str(data), "--batch-size", "16", "--max-seq-length", "32", "--lr", "1e-3", "--executor", "local",
            "--max-parallel", "2", "--quiet", "--job-setup", "export OMP_NUM_THREADS=1"]  # two jobs share two cores
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    driver = subprocess.Popen([sys.executable, "-m", "st_recipe.cli", *args], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while len(_cells_with_markers(out)) < 2 and time.time() < deadline:
            time.sleep(0.2)
        assert (out / "sweep.json").is_file()  # the grid is written before any job
        assert len(_cells_with_markers(out)) == 2  # --max-parallel 2: two cells submitted, the other two wait
    finally:
        driver.send_signal(signal.SIGKILL)  # the driver dies; its two jobs keep running
        driver.wait()
    running = {p.name for p in _cells_with_markers(out)}

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["cell"] for r in rows) == sorted(p.name for p in (out / "cells").iterdir() if p.is_dir())
    assert len(rows) == 4 and len({r["cell"] for r in rows}) == 4
    for marker in _cells_with_markers(out):
        jobs = json.loads(marker.read_text())["jobs"]
        # Each cell had exactly one job: the re-run waited for the two still running instead of resubmitting them.
        assert len(jobs) == 1, (marker.name, jobs)
        assert Path(jobs[0]["log"]).is_file()
    assert running <= {p.name for p in _cells_with_markers(out)}
    for r in rows:
        rec = json.loads((out / "cells" / r["cell"] / "st_recipe.json").read_text())
        assert rec["resumed"] is False and 0.99 <= r["spent_fraction"] <= 1.0

    fitted = CliRunner().invoke(main, ["fit", str(out), "--json"])
    assert fitted.exit_code == 0, fitted.output
    assert set(json.loads(fitted.output)["fitted"]["methods"]) == {"full", "bias"}


class _Broken:
    """A recipe whose job fails at once (no torch import): the job's error and log must reach the driver."""

    def to_dict(self) -> dict:
        return {"model": "nowhere", "method": "no-such-method", "pairs": 1}


def test_failed_cells_are_reported_with_their_logs_and_do_not_stop_the_others(tmp_path):
    pytest.importorskip("submitit")
    from st_recipe.sweeps.grid import Cell
    from st_recipe.sweeps.jobs import JobOptions, run_jobs

    planned = [(Cell(1e15, "pythia-14m", "full"), _Broken()), (Cell(4e15, "pythia-14m", "full"), _Broken())]
    failures = run_jobs(planned, tmp_path, "builtin", JobOptions(executor="local", max_parallel=1, poll_s=0.2))
    assert sorted(f.cell for f in failures) == sorted(c.name for c, _ in planned)  # the first failure stopped nothing
    for failure in failures:
        assert failure.error.startswith("StRecipeError: recipe: unknown method 'no-such-method'"), failure
        assert failure.log and Path(failure.log).is_file() and "Traceback" in Path(failure.log).read_text()
    assert not (tmp_path / "results.jsonl").exists()
    # A re-run resubmits the failed cells (their jobs are over): each marker now lists two jobs.
    again = run_jobs(planned, tmp_path, "builtin", JobOptions(executor="local", max_parallel=2, poll_s=0.2))
    assert len(again) == 2
    for cell, _ in planned:
        assert len(json.loads((tmp_path / "cells" / f"{cell.name}.job.json").read_text())["jobs"]) == 2


def test_local_jobs_on_a_gpu_machine_each_get_their_own_gpu(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    from st_recipe.sweeps.grid import Cell
    from st_recipe.sweeps.jobs import JobOptions, run_jobs

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # two GPUs, as far as the driver can tell
    planned = [(Cell(b, "pythia-14m", "full"), _Broken()) for b in (1e15, 4e15, 1.6e16)]
    opts = JobOptions(executor="local", max_parallel=2, poll_s=0.2)
    assert opts.gpus == 1
    run_jobs(planned, tmp_path, "builtin", opts)
    given = [json.loads((tmp_path / "cells" / f"{c.name}.job.json").read_text())["devices"] for c, _ in planned]
    assert given[:2] in ([[0], [1]], [[1], [0]]) and given[2] in ([0], [1])  # never two running jobs on one GPU


def test_paper_grid_dry_run_prints_cells_flops_gpu_hours_and_resources(tmp_path):
    result = CliRunner().invoke(main, ["sweep", "--grid", "paper", "--dry-run", "--out", str(tmp_path / "paper"),
                                       "--executor", "slurm", "--slurm-partition", "gpu", "--slurm-time", "12h",
                                       "--slurm-gpus-per-job", "1", "--max-parallel", "16"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "1.5e15-pythia-14m-full" in out and "1.536e18-pythia-2.8b-lora-r32" in out
    for budget in ("1.5e15", "6e15", "2.4e16", "9.6e16", "3.84e17", "1.536e18"):
        assert f"{budget}-pythia-70m-bias" in out
    assert "planned FLOPs" in out and "GPU-hours" in out and "peak memory/GPU" in out
    assert "192 cells" in out and "executor=slurm" in out and "partition=gpu" in out and "time_min=720" in out
    assert "parallel=16" in out and "nothing was submitted" in out
    assert not (tmp_path / "paper").exists()  # a dry run writes nothing


def test_gpu_hours_follow_the_throughput_model():
    from st_recipe.sweeps.plan import Throughput

    assert Throughput(tflops=100.0, mfu=0.5).hours(1.8e17, "bf16") == pytest.approx(1.0)
    assert Throughput().hours(1e18, "fp32") > Throughput().hours(1e18, "bf16")


@pytest.mark.parametrize("args, needle", [
    (["--executor", "slurm", "--slurm-time", "soon"], "--slurm-time"),
    (["--slurm-partition", "gpu"], "need --executor slurm"),
    (["--max-parallel", "2"], "need --executor local or slurm"),
    (["--executor", "local", "--max-parallel", "0"], "positive integer"),
    (["--executor", "slurm", "--slurm-arg", "account"], "KEY=VALUE"),
    (["--report-to", "neptune"], "not a supported tracker"),
])
def test_bad_job_options_fail_before_anything_is_written(tmp_path, args, needle):
    result = CliRunner().invoke(main, ["sweep", "--budgets", "1e15", "--models", "pythia-14m", "--methods", "full",
                                       "--out", str(tmp_path / "sw"), *args])
    assert result.exit_code == 2 and needle in result.output, result.output
    assert not (tmp_path / "sw").exists()


def test_grid_flags_conflict_with_paper_grid(tmp_path):
    result = CliRunner().invoke(main, ["sweep", "--grid", "paper", "--budgets", "1e15", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "--grid paper sets" in result.output
    result = CliRunner().invoke(main, ["sweep", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "or --grid paper" in result.output


def test_slurm_jobs_ask_for_what_the_flags_say(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    from st_recipe.sweeps.executors import JobOptions, make_executor

    opts = JobOptions(executor="slurm", partition="gpu", gpus_per_job=2, time_min=90, cpus_per_job=8, mem_gb=32,
                      slurm_args=(("account", "proj"),), setup=("source venv/bin/activate",), max_parallel=4)
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun: not a SLURM machine, said in one line
    with pytest.raises(StRecipeError, match="--executor slurm.*--executor local"):
        make_executor(opts, tmp_path / "jobs", "mysweep")
    (tmp_path / "srun").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "srun").chmod(0o755)
    executor = make_executor(opts, tmp_path / "jobs", "mysweep")
    text = executor._make_submission_file_text("python -m x", "uid")
    for line in ("--partition=gpu", "--gpus-per-node=2", "--time=90", "--cpus-per-task=8", "--mem=32768M",
                 "--account=proj", "--job-name=mysweep", "source venv/bin/activate"):
        assert line in text, line
    assert executor.parameters["array_parallelism"] == 4


def test_slurm_job_states_decide_whether_a_cell_is_resubmitted(tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    from st_recipe.sweeps.jobs import Marker

    states = {"1": "PENDING", "2": "UNKNOWN", "3": "FAILED", "4": "COMPLETED"}

    class FakeSlurmJob:  # what sacct would say
        def __init__(self, folder, job_id):
            self.state = states[job_id]

    monkeypatch.setattr(submitit, "SlurmJob", FakeSlurmJob)

    def marker(job_id, age_s):
        data = {"executor": "slurm", "job_id": job_id, "folder": str(tmp_path), "submitted_at": time.time() - age_s}
        return Marker(tmp_path / "cells" / f"c{job_id}.job.json", data)

    assert marker("1", 1e5).alive()  # pending: wait for it, never submit the cell again
    assert marker("2", 5).alive() and not marker("2", 1e5).alive()  # unknown to sacct: only just after submission
    assert not marker("3", 5).alive() and not marker("4", 5).alive()  # over: resubmitted unless the cell finished


def test_parse_time():
    from st_recipe.sweeps.executors import parse_time

    assert parse_time("90") == 90 and parse_time("1:30:00") == 90 and parse_time("2-00:00:00") == 2880
    assert parse_time("12h") == 720 and parse_time(None) is None
    with pytest.raises(StRecipeError):
        parse_time("0")
