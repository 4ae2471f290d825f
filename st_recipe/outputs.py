"""The one owner of "may I write this output path?": the rules every output folder and file shares, and their wording.

:func:`check_folder` (a folder to create or reuse), :func:`check_file` (a file to write, never over one the user
named unless ``--overwrite``) and :func:`check_can_create` (a real probe: ``access()`` says yes to root on read-only
mounts and virtual file systems) are what every command asks before its heavy imports. Outputs with an owner of
their own add rules on top and call these for the rest: a run dir (:class:`st_recipe.run.RunDir`: a lock, an
earlier run, ``--overwrite``/``--resume``, checkpoints; eval's results inside it) and publish's dry-run folder
(:func:`st_recipe.publishing.staging.check_dry_target`: only an earlier dry run of the same run is replaced).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from st_recipe.errors import StRecipeError


def _absolute(target: str | os.PathLike[str]) -> Path:
    """``target`` with ``~`` expanded, made absolute (so its ancestors end at the root)."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(target))))


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (``path`` is absolute)."""
    while not path.exists():
        path = path.parent
    return path


def check_folder(target: str | os.PathLike[str], what: str, *, empty: str | None = None) -> Path:
    """A folder to be created or reused: named, not a file, its nearest existing ancestor a folder; else one line.

    ``what`` names it in the messages (a flag such as ``--out``); ``empty`` replaces the message for an empty name.
    """
    text = os.fspath(target)
    if not text.strip():
        raise StRecipeError(empty or f"{what} must not be empty")
    path = _absolute(text)
    if path.exists() and not path.is_dir():
        raise StRecipeError(f"{what} {text!r} is a file, not a folder")
    ancestor = _nearest_existing(path)
    if not ancestor.is_dir():
        raise StRecipeError(f"{what} {text!r} cannot be created: {str(ancestor)!r} is a file, not a folder")
    return path


def check_file(given: str | os.PathLike[str] | None, default: Path, flag: str, *, overwrite: bool = True,
               suffixes: tuple[str, ...] = ()) -> Path:
    """An output file: named, not a folder, in an existing folder, with one of ``suffixes``; else one line.

    With ``overwrite=False`` a file the user named (``given``) that already exists is refused: only the command's
    own ``default`` file may be replaced without ``--overwrite``. Nothing is created to make room for the file.
    """
    if given is not None and not str(given).strip():
        raise StRecipeError(f"{flag} must not be empty")
    path = Path(os.path.expanduser(str(given))) if given is not None else default
    named = str(given) if given is not None else str(path)
    if path.is_dir():
        raise StRecipeError(f"{flag} {str(path)!r} is a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        what = "is a file" if parent.exists() else "does not exist"
        raise StRecipeError(f"{flag} {str(path)!r}: its folder {str(parent)!r} {what}")
    if suffixes and not path.name.endswith(suffixes):
        raise StRecipeError(f"{flag} {named!r} must be a {suffixes[0]} file")
    if given is not None and not overwrite and (path.exists() or path.is_symlink()):
        raise StRecipeError(f"{flag} {named!r} already exists; pass --overwrite to replace it")
    return path


def check_can_create(target: str | os.PathLike[str], what: str, *, inside: bool = False, hint: str = "") -> None:
    """Create and remove a probe folder where ``target`` would go (``inside``: in it), else a one-line error.

    ``hint`` is added to the error after a semicolon (what the command writes there and the way out).
    """
    path = _absolute(target)
    ancestor = _nearest_existing(path if inside else path.parent)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".st-recipe-probe-", dir=ancestor))
    except OSError as exc:
        more = f"; {hint}" if hint else ""
        raise StRecipeError(f"{what} {os.fspath(target)!r} cannot be written: {exc.strerror or exc} in "
                            f"{str(ancestor)!r}{more}") from None
