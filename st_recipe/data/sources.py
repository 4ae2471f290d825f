"""What a ``--data`` value names (the builtin set, a local file or a Hub dataset id) and loading it.

:func:`classify_source` decides without reading anything; :func:`load_pairs` then hands the source to its
reader (:mod:`.builtin`, :mod:`.files` or :mod:`.hub`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st_recipe.data.builtin import BUILTIN, load_builtin
from st_recipe.data.hub_datasets import load_hub
from st_recipe.data.local_files import FILE_SUFFIXES, load_file
from st_recipe.data.pairs import PairData
from st_recipe.errors import StRecipeError
from st_recipe.hub.ids import parse_dataset_spec


def load_pairs(
    source: str | os.PathLike[str] | None = BUILTIN,
    *,
    anchor_column: str | None = None,
    positive_column: str | None = None,
    split: str = "train",
    streaming: bool | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> PairData:
    """Load (anchor, positive) pairs from `builtin`, a local file or a Hub dataset id, shuffled with `seed`."""
    if limit is not None and int(limit) < 1:
        raise StRecipeError(f"limit must be at least 1, got {limit}")
    src = classify_source(source)
    if src.kind == "builtin":
        if anchor_column or positive_column:
            raise StRecipeError("--anchor-column/--positive-column do not apply to the builtin pairs")
        return load_builtin(split, limit, seed)
    if src.kind == "file":
        return load_file(src.path, anchor_column, positive_column, split, limit, seed)  # type: ignore[arg-type]
    return load_hub(
        src.repo, src.config, src.split or split, anchor_column, positive_column,  # type: ignore[arg-type]
        True if streaming is None else bool(streaming), limit, seed,
    )


def check_source(source: str | os.PathLike[str] | None, *, anchor_column: str | None = None,
                 positive_column: str | None = None, seed: int = 0, load: bool = True) -> Any:
    """Check a data source before training: a local file is read now (returned as pairs when ``load``), a Hub
    dataset must be reachable or cached, and the built-in set and Hub ids are returned as given."""
    src = classify_source(source)
    if src.kind == "builtin" and not (anchor_column or positive_column):
        return source
    if src.kind == "hub":
        from st_recipe.hub import access

        access.require_dataset(src.repo)
        return source
    pairs = load_pairs(src.text, anchor_column=anchor_column, positive_column=positive_column, seed=seed)
    return pairs if load else source


def recorded_hub_id(source: str) -> str | None:
    """The Hub dataset repo named by a source string as a run record holds it (no file-system check), else None."""
    if source.lower().endswith(FILE_SUFFIXES) or os.path.isabs(source) or source.startswith((".", "~")):
        return None
    spec = parse_dataset_spec(source)
    return spec["repo"] if spec else None


@dataclass(frozen=True)
class DataSource:
    """A classified ``--data`` value: the built-in set, an existing local file, or a Hub dataset id."""

    kind: str  # "builtin" | "file" | "hub"
    text: str
    path: Path | None = None
    repo: str | None = None
    config: str | None = None
    split: str | None = None


def classify_source(source: str | os.PathLike[str] | None) -> DataSource:
    """Say what a data source is without reading it (one-line errors for missing files and bad ids)."""
    text = BUILTIN if source is None else str(source).strip()
    if not text:
        raise StRecipeError(f"--data must not be empty; give a file, a Hub dataset id or '{BUILTIN}'")
    if text.lower() == BUILTIN:
        return DataSource("builtin", BUILTIN)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            raise StRecipeError(f"{text} is a directory; give a file ({', '.join(FILE_SUFFIXES)})")
        if not path.is_file():
            # Reading a FIFO with no writer blocks forever; a device or socket is never a data file.
            raise StRecipeError(f"{text} is not a regular file (a pipe, device or socket); give a file "
                                f"({', '.join(FILE_SUFFIXES)})")
        return DataSource("file", text, path=path)
    # A Hub id has exactly one slash; anything else path-shaped is a file the user expected to exist.
    looks_like_path = (
        path.suffix.lower() in FILE_SUFFIXES
        or text.startswith(("./", "../", "/", "~", ".\\"))
        or text.count("/") > 1
        or "\\" in text
    )
    hub = parse_dataset_spec(text)
    if looks_like_path or hub is None:
        if hub is None and not looks_like_path:
            raise StRecipeError(
                f"{text!r} is neither an existing file nor a Hub dataset id (org/name[:config[:split]]); "
                f"use a local file ({', '.join(FILE_SUFFIXES)}) or '{BUILTIN}'"
            )
        raise StRecipeError(f"data file not found: {text}")
    return DataSource("hub", text, repo=hub["repo"], config=hub["config"] or None, split=hub["split"] or None)
