"""Files written for a user appear whole or not at all (issue 26): a unique temporary sibling, then a rename.

Each writer is made to fail half-way (a full disk while writing the temporary file): the file that was
there before is unchanged and no temporary file is left. Two writes of one path never share a temporary.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from st_recipe._io import atomic_write_text
from st_recipe.planning.planner import write_paper_grid
from st_recipe.planning.recipes import Recipe
from st_recipe.zoo import write_zoo

WRITERS: dict[str, Callable[[Path], Any]] = {
    "write_zoo": write_zoo,
    "write_paper_grid": write_paper_grid,
    "Recipe.save yaml": lambda p: Recipe(model="pythia-14m", method="full", pairs=64).save(p),
    "Recipe.save json": lambda p: Recipe(model="pythia-14m", method="full", pairs=64).save(p.with_suffix(".json")),
    "atomic_write_text": lambda p: atomic_write_text(p, "new text\n"),
}


def _target(name: str, tmp_path: Path) -> Path:
    return tmp_path / ("out.json" if name.endswith("json") else "out.yaml")


@pytest.mark.parametrize("name", WRITERS)
def test_a_failed_write_leaves_the_old_file_and_no_temporary(name: str, tmp_path: Path, monkeypatch):
    target = _target(name, tmp_path)
    target.write_text("the user's old file\n")
    real = Path.write_text

    def full_disk(self: Path, *args: Any, **kwargs: Any) -> int:
        real(self, "half a fi", encoding="utf-8")  # part of the text reaches the disk, then it is full
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError, match="No space left"):
        WRITERS[name](tmp_path / "out.yaml")
    monkeypatch.undo()
    assert target.read_text() == "the user's old file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


@pytest.mark.parametrize("name", WRITERS)
def test_a_write_goes_through_a_unique_temporary_sibling(name: str, tmp_path: Path, monkeypatch):
    renames: list[tuple[str, str]] = []
    real = os.replace

    def record(src: Any, dst: Any) -> None:
        renames.append((os.fspath(src), os.fspath(dst)))
        real(src, dst)

    monkeypatch.setattr(os, "replace", record)
    for _ in range(2):
        WRITERS[name](tmp_path / "out.yaml")
    target = _target(name, tmp_path)
    assert [dst for _, dst in renames] == [str(target)] * 2
    temps = [Path(src) for src, _ in renames]
    assert temps[0] != temps[1] and all(t.parent == tmp_path and t.name.startswith(".") for t in temps)
    assert target.stat().st_size > 0 and sorted(p.name for p in tmp_path.iterdir()) == [target.name]
