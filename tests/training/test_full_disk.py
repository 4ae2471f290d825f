"""A full disk during ``train`` (issue 26): one ``no space left on device (PATH)`` line, and nothing left behind.

Nothing left behind matters beyond tidiness: a ``<out>.checkpoints/run.json`` without a complete
checkpoint used to make the next plain run refuse, naming an unfinished run that could not be resumed.
The disk is a real 200 KiB tmpfs where ``unshare -m`` and ``mount`` work (root), and an injected ENOSPC
everywhere (the run dir's save, the checkpoint record's write).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from st_recipe.planning.recipes import Recipe

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "PYTHONDONTWRITEBYTECODE": "1"}
FULL = "no space left on device ("


def _recipe(tiny_neox_dir: Path, where: Path) -> Path:
    # 25 steps of 16 pairs: a few seconds, and a model (about 300 KiB) that does not fit in 200 KiB.
    return Recipe(model=str(tiny_neox_dir), method="full", pairs=64, batch_size=16, learning_rate=1e-3,
                  budget=4e9, max_seq_length=32).save(where / "r.yaml")


def _tmpfs_works(tmp: Path) -> bool:
    probe = tmp / "tmpfs-probe"
    probe.mkdir(exist_ok=True)
    try:
        return subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe}"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.parametrize("save_steps", ["1000", "1"], ids=["final-save", "first-checkpoint"])
def test_a_full_tmpfs_is_one_line_and_the_next_run_is_not_blocked(save_steps: str, tiny_neox_dir: Path,
                                                                    tmp_path: Path):
    if not _tmpfs_works(tmp_path):
        pytest.skip("needs unshare -m and a tmpfs mount (root)")
    recipe = _recipe(tiny_neox_dir, tmp_path)
    disk = tmp_path / "disk"
    disk.mkdir()
    train = f'"{sys.executable}" -m st_recipe.cli train --recipe "{recipe}" --out run --quiet'
    # One mount namespace for both runs and the listing: the tmpfs lives as long as this shell.
    script = (f'mount -t tmpfs -o size=200k tmpfs "{disk}" && cd "{disk}" && '
              f'{train} --save-steps {save_steps}; echo "rc=$?" >&2; ls -A >&2; echo "--- second" >&2; '
              f'{train} --save-steps {save_steps}')
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], env=ENV, capture_output=True, text=True, timeout=600)
    first, _, second = proc.stderr.partition("--- second\n")
    lines = first.strip().splitlines()
    assert lines[0].startswith(f"error: {FULL}{disk}/run"), proc.stderr[-3000:]
    assert lines[1] == "rc=2" and lines[2:] == [], f"left behind: {lines[2:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    # The second run fails the same way, not with "holds checkpoints of an unfinished run".
    assert second.strip().splitlines() == [lines[0]], proc.stderr[-3000:]


INJECT = """
import errno, sys
import st_recipe.run, st_recipe.training.orchestrate as orchestrate

def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")

if sys.argv[1] == "run-dir":
    st_recipe.run.RunDir.write = full
else:
    orchestrate.atomic_write_text = full
sys.argv = ["st-recipe", *sys.argv[2:]]
from st_recipe.cli import main
main()
"""


@pytest.mark.parametrize("where,needle", [("run-dir", "/work/run)"), ("checkpoint-record", "/work/run.checkpoints)")])
def test_an_injected_enospc_is_one_line_and_leaves_nothing(where: str, needle: str, tiny_neox_dir: Path,
                                                           tmp_path: Path):
    recipe = _recipe(tiny_neox_dir, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    args = ["train", "--recipe", str(recipe), "--out", "run", "--quiet", "--save-steps", "1000"]  # no checkpoint
    proc = subprocess.run([sys.executable, "-c", INJECT, where, *args], cwd=work, env=ENV, capture_output=True,
                          text=True, timeout=600)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"error: {FULL}") and lines[0].endswith(needle), lines
    assert sorted(p.name for p in work.iterdir()) == [], "a failed run left files behind"


def test_a_record_without_a_checkpoint_does_not_block_the_next_run(tmp_path: Path):
    from st_recipe.run import RunDir

    (tmp_path / "run.checkpoints").mkdir()
    (tmp_path / "run.checkpoints" / "run.json").write_text("{}")
    RunDir(tmp_path / "run").check(overwrite=False, resume=False)  # nothing to resume: no refusal
