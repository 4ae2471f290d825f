"""Small file helpers shared by the writers of run dirs, upload folders and plots."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

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


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` through a temporary sibling and a rename, so readers never see half a file."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON-lines file; one-line errors name the line."""
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise StRecipeError(f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        try:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise StRecipeError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise StRecipeError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
                yield number, obj
        except UnicodeDecodeError:
            raise StRecipeError(f"{path}: not UTF-8 text") from None


CACHE_ENV = "ST_RECIPE_CACHE_DIR"


def cache_root() -> Path:
    """st-recipe's one cache folder: $ST_RECIPE_CACHE_DIR, else $XDG_CACHE_HOME/st_recipe, else ~/.cache/st_recipe."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "st_recipe"


def file_target(given: str | os.PathLike[str] | None, default: Path, flag: str) -> Path:
    """An output file path whose folder exists (nothing is created to make room for it)."""
    if given is not None and not str(given).strip():
        raise StRecipeError(f"{flag} must not be empty")
    path = Path(os.path.expanduser(str(given))) if given is not None else default
    if path.is_dir():
        raise StRecipeError(f"{flag} {str(path)!r} is a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        what = "is a file" if parent.exists() else "does not exist"
        raise StRecipeError(f"{flag} {str(path)!r}: its folder {str(parent)!r} {what}")
    return path


def write_together(text_path: Path, text: str, other_path: Path, render: Any) -> None:
    """Write a text file and a rendered file through temporary siblings, then rename both: both appear or neither."""
    import secrets

    temps: list[Path] = []
    target = text_path

    def temp_for(path: Path) -> Path:
        nonlocal target
        target = path
        tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
        tmp.open("x").close()  # fails here, before any rendering, if the folder is not writable
        temps.append(tmp)
        return tmp

    try:
        text_tmp = temp_for(text_path)
        text_tmp.write_text(text, encoding="utf-8")
        other_tmp = temp_for(other_path)
        render(other_tmp)
        os.replace(text_tmp, text_path)
        os.replace(other_tmp, other_path)
    except OSError as exc:
        raise StRecipeError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    finally:
        for tmp in temps:
            if tmp.exists():
                tmp.unlink()
