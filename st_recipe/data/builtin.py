"""The built-in pairs: a fixed, versioned set shipped in this package and checked against its hash.

``builtin_pairs_v1.jsonl.gz`` (described in ``BUILTIN_PAIRS.md``) is read as a package resource, so wheels,
editable installs and zipped packages all work; it is verified against :data:`BUILTIN_SHA256` and parsed
once per process.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import json
import zlib
from typing import TYPE_CHECKING

from st_recipe.data.pairs import PairData, PairStats, first_line, shuffle_and_cut
from st_recipe.errors import StRecipeError

if TYPE_CHECKING:  # pragma: no cover
    from importlib.resources.abc import Traversable

BUILTIN = "builtin"
# The shipped builtin set (BUILTIN_PAIRS.md); a different set of pairs gets a new version and file.
BUILTIN_VERSION = "v1"
# sha256 of the decompressed file, as printed by scripts/mine_builtin_pairs.py; checked on every load.
BUILTIN_SHA256 = "3535a160a648b8809a55cbd7b5bd8c186e1b484f49184fc99d72b61f788747bb"

_BUILTIN_FILE = f"builtin_pairs_{BUILTIN_VERSION}.jsonl.gz"

# Parsed splits by resource path: (anchors, positives) in file order. Never handed out, only copied.
_MEMO: dict[str, dict[str, tuple[list[str], list[str]]]] = {}


def load_builtin(split: str, limit: int | None, seed: int) -> PairData:
    """The `train` or `test` split of the shipped pairs, shuffled with `seed` and cut to `limit`."""
    if split not in ("train", "test"):
        raise StRecipeError(f"the builtin pairs have splits 'train' and 'test', not {split!r}")
    anchors, positives = _builtin_splits()[split]
    stats = PairStats(rows_read=len(anchors))
    data = PairData(list(anchors), list(positives), f"{BUILTIN}:{split}", stats)
    return shuffle_and_cut(data, limit, seed)


def _builtin_path() -> Traversable:
    """The shipped file, as a resource so that wheels, editable installs and zipped packages all work."""
    return importlib.resources.files(__package__).joinpath(_BUILTIN_FILE)


def _builtin_splits() -> dict[str, tuple[list[str], list[str]]]:
    """Read, verify and parse the shipped file once per process."""
    resource = _builtin_path()
    key = str(resource)
    if key in _MEMO:
        return _MEMO[key]
    where = f"the builtin pairs file {_BUILTIN_FILE} ({resource})"
    try:
        packed = resource.read_bytes()
    except (OSError, KeyError):  # a zipped package reports a missing member as KeyError
        raise StRecipeError(f"{where} is missing; reinstall st-recipe") from None
    try:
        raw = gzip.decompress(packed)
    except (OSError, EOFError, zlib.error) as exc:
        raise StRecipeError(f"{where} is corrupted ({first_line(exc)}); reinstall st-recipe") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != BUILTIN_SHA256:
        raise StRecipeError(
            f"{where} is corrupted: its sha256 is {digest}, expected {BUILTIN_SHA256}; reinstall st-recipe"
        )
    splits: dict[str, tuple[list[str], list[str]]] = {"train": ([], []), "test": ([], [])}
    # The hash matched, so every line is a row the mining script wrote; no per-row checks are needed.
    for line in raw.decode("utf-8").split("\n"):
        if line:
            row = json.loads(line)
            anchors, positives = splits[row["split"]]
            anchors.append(row["anchor"])
            positives.append(row["positive"])
    _MEMO[key] = splits
    return splits
