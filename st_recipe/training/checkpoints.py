"""What a budget-trainer checkpoint is: its files, how many are kept, which one a resume takes, and how a failed
write is reported."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from st_recipe.errors import StRecipeError

TRAINABLE_STATE = "trainable_state.pt"
METER_STATE = "flop_meter.json"
CHECKPOINTS_KEPT = 2


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (staging folders and incomplete ones are ignored)."""
    if not root.is_dir():
        return None
    ckpts = [p for p in root.glob("checkpoint-*") if p.is_dir() and (p / METER_STATE).is_file()
             and p.name.split("-")[-1].isdigit()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[-1])) if ckpts else None


def write_error(exc: BaseException, path: Path) -> StRecipeError:
    """One line for a failed checkpoint write; a full disk is named as such."""
    err = exc
    while err is not None:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return StRecipeError(f"no space left on device ({path})")
        err = err.__cause__ or err.__context__
    try:
        if shutil.disk_usage(path.parent if path.parent.exists() else ".").free < 16 * 2**20:
            # torch.save reports a full disk as "[enforce fail at inline_container.cc] ... file write failed".
            return StRecipeError(f"no space left on device ({path})")
    except OSError:
        pass
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StRecipeError(f"could not write checkpoint {path}: {first}")
