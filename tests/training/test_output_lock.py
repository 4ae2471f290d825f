"""One run per output folder (issue 26): ``<out>.lock`` is held for the run's lifetime, a stale one is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from st_recipe._io import OutputLock
from st_recipe.errors import StRecipeError
from st_recipe.planning.recipes import Recipe
from st_recipe.training.orchestrate import IDENTITY_FILE, _check_same_run

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "st_recipe.cli", *args], cwd=cwd, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_second_train_on_the_same_out_is_refused_naming_the_pid(tiny_neox_dir: Path, tmp_path: Path):
    # A budget that keeps the first run busy well past the second one's check (it is killed below).
    recipe = Recipe(model=str(tiny_neox_dir), method="full", pairs=640, batch_size=16, learning_rate=1e-3,
                    budget=4e11, max_seq_length=32).save(tmp_path / "r.yaml")
    first = _cli("train", "--recipe", str(recipe), "--out", "run", "--quiet", cwd=tmp_path)
    lock = tmp_path / "run.lock"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and first.poll() is None and not (lock.is_file() and lock.read_text().strip()):
            time.sleep(0.1)
        assert first.poll() is None, first.communicate()[1][-2000:]
        assert lock.read_text().strip() == str(first.pid)
        second = _cli("train", "--recipe", str(recipe), "--out", "run", "--quiet", "--overwrite", cwd=tmp_path)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and f"PID {first.pid}" in lines[0], err
        assert "Traceback" not in err
        assert first.poll() is None  # the first run was not disturbed
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # kill -9 leaves the file behind; the OS dropped the lock, so the next run takes it over.
    assert lock.is_file() and OutputLock(tmp_path / "run").holder() is None
    with OutputLock(tmp_path / "run") as taken:
        assert lock.read_text().strip() == str(os.getpid()) and taken.holder() is None
    assert not lock.exists()


HOLD = "import sys, time; from st_recipe._io import OutputLock; OutputLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)"


def test_lock_held_by_another_process_then_released_by_its_death(tmp_path: Path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "out")], env=ENV, text=True,
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert OutputLock(tmp_path / "out").holder() == holder.pid
        with pytest.raises(StRecipeError, match=f"in use by another st-recipe run \\(PID {holder.pid}"):
            OutputLock(tmp_path / "out").acquire()
    finally:
        holder.kill()
        holder.wait()
    OutputLock(tmp_path / "out").acquire()


def test_a_stale_lock_file_of_a_dead_pid_is_taken_over(tmp_path: Path):
    (tmp_path / "out.lock").write_text("999999999\n")
    lock = OutputLock(tmp_path / "out")
    lock.acquire()
    assert (tmp_path / "out.lock").read_text().strip() == str(os.getpid())
    lock.release()
    assert not (tmp_path / "out.lock").exists()


def test_a_truncated_checkpoint_record_is_one_line_saying_what_to_do(tmp_path: Path):
    (tmp_path / IDENTITY_FILE).write_text(json.dumps({"recipe": {"model": "x"}, "data": "builtin"})[:17])
    with pytest.raises(StRecipeError, match="is damaged.*--overwrite starts again and deletes them"):
        _check_same_run(tmp_path, {"recipe": {"model": "x"}, "data": "builtin"})
