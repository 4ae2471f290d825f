"""Small file helpers shared by the writers of run dirs, upload folders and plots."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from st_recipe.errors import StRecipeError


def replace_dir(tmp: Path, target: Path) -> None:
    """Swap the finished folder ``tmp`` into ``target`` by renames, so ``target`` is never half-written."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Lay out, write and close a matplotlib figure (creating the parent folder)."""
    import matplotlib.pyplot as plt

    out = Path(path)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding one object (one-line errors for unreadable, invalid or non-object content)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StRecipeError(f"{str(path)!r} is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise StRecipeError(f"{str(path)!r} must hold a JSON object")
    return data
