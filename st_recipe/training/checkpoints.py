"""How a failed budget-trainer checkpoint write is reported (what a checkpoint is lives in :mod:`st_recipe.run`)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from st_recipe.errors import StRecipeError


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
