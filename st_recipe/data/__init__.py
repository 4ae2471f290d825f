"""(anchor, positive) text pairs for contrastive training: local files, Hub datasets, and a built-in default.

Sources accepted by :func:`load_pairs`:

* ``"builtin"``: an offline default that needs no download. Pairs are mined at run time from the
  docstrings of installed Python code (the standard library plus a fixed list of packages that
  st-recipe itself depends on, so they exist wherever st-recipe is installed): the anchor is a
  docstring's summary sentence, the positive is the rest of that docstring with doctests, literal code
  blocks, underlines and "See Also"/"References" sections removed. Real human-written text, not
  templates; no text occurs twice. The result is deterministic for a given environment and is cached
  in the process and on disk (``$ST_RECIPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/st_recipe``, else
  ``~/.cache/st_recipe``), keyed by the Python version, the versions of the packages read and this
  module's source. A cold build parses the sources in parallel child processes (a few seconds).
  ``split="test"`` holds out 5 % (at least 500 pairs), chosen by a hash of the anchor, so train and
  test never share a text.
* A local file: ``.jsonl``/``.ndjson``/``.json`` (JSON lines, or one JSON array of objects), ``.csv``,
  ``.tsv`` or ``.parquet``. Columns are found automatically (see ``COLUMN_PAIRS``) or named with
  ``anchor_column``/``positive_column``. Local files have no splits.
* A Hub dataset ``org/name``, ``org/name:config`` or ``org/name:config:split`` (``org/name::split``
  for the default config), read through ``datasets.load_dataset`` (streaming by default; ``streaming``
  applies to Hub ids only). Without Hub access this fails with one line suggesting a file or builtin.

Every result is shuffled with ``seed``. ``limit`` keeps the first ``limit`` pairs after shuffling (a
seeded random sample), except for a streamed Hub dataset, which cannot be sampled without reading it
all: there reading stops after the first ``limit`` usable rows, which are then shuffled.

The BAAI BGE layout ``{"query": str, "pos": [str, ...], "neg": [...]}`` gives one pair per row with the
*first* positive. Expanding every positive would repeat the query across pairs, weighting multi-positive
queries more and breaking the paper's pairs-per-FLOP accounting (one pair = one query and one positive);
the paper trains with in-batch negatives only, so ``neg`` (and any ``negative`` column) is ignored.

Training with in-batch negatives must not put the same text twice in one batch (the copy becomes a false
negative). Exact duplicate pairs are removed here; pairs that share only an anchor or only a positive
are kept, and the trainer separates them with sentence-transformers'
``BatchSamplers.NO_DUPLICATES`` (:data:`BATCH_SAMPLER`). Texts are not truncated here: the tokenizer
cuts them at the recipe's maximum sequence length.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import os
import random
import re
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sized

from st_recipe.errors import StRecipeError

if TYPE_CHECKING:  # pragma: no cover
    import datasets

__all__ = ["BATCH_SAMPLER", "BUILTIN", "COLUMN_PAIRS", "PairData", "PairStats", "check_enough", "load_pairs"]

BUILTIN = "builtin"
# The value of sentence_transformers' BatchSamplers.NO_DUPLICATES, which the trainer must use.
BATCH_SAMPLER = "no_duplicates"
FILE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")

# Tried in order; the first pair present in the data wins. Matching ignores case.
COLUMN_PAIRS: tuple[tuple[str, str], ...] = (
    ("anchor", "positive"),
    ("query", "pos"),
    ("query", "positive"),
    ("sentence1", "sentence2"),
    ("text1", "text2"),
    ("question", "answer"),
    ("query", "answer"),
)


@dataclass
class PairStats:
    """Counts from reading a source: how many rows came in and why some were dropped.

    For ``builtin`` a row is one docstring of the mined pool (both splits); ``skipped_empty`` counts
    docstrings with no body, ``skipped_malformed`` those rejected as junk, and ``rows_kept`` the pairs
    of the chosen split. For files, ``skipped_malformed`` counts ragged CSV rows and BGE rows whose
    ``pos`` list is empty. ``over_limit`` counts pairs dropped by ``limit``.
    """

    rows_read: int = 0
    rows_kept: int = 0
    skipped_empty: int = 0
    skipped_malformed: int = 0
    duplicates_removed: int = 0
    over_limit: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict (for run metadata)."""
        return asdict(self)


@dataclass
class PairData:
    """Parallel lists of anchors and positives, already shuffled with the loader's seed."""

    anchors: list[str]
    positives: list[str]
    source: str = ""
    stats: PairStats = field(default_factory=PairStats)

    def __post_init__(self) -> None:
        if len(self.anchors) != len(self.positives):
            raise StRecipeError(
                f"{len(self.anchors)} anchors but {len(self.positives)} positives; they must pair up"
            )

    def __len__(self) -> int:
        return len(self.anchors)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(zip(self.anchors, self.positives))

    def __repr__(self) -> str:
        return f"PairData({len(self)} pairs from {self.source or '?'})"

    def shuffled(self, seed: int) -> PairData:
        """A copy in a new order that depends only on the seed."""
        order = list(range(len(self)))
        random.Random(seed).shuffle(order)
        return PairData(
            [self.anchors[i] for i in order], [self.positives[i] for i in order], self.source, replace(self.stats)
        )

    def to_dataset(self) -> datasets.Dataset:
        """A `datasets.Dataset` with columns `anchor`, `positive` (the order the contrastive losses read)."""
        import datasets

        return datasets.Dataset.from_dict({"anchor": list(self.anchors), "positive": list(self.positives)})


def check_enough(pairs: PairData | Sized, batch_size: int) -> None:
    """Raise unless there are at least `batch_size` pairs (one full batch of in-batch negatives)."""
    if int(batch_size) < 1:
        raise StRecipeError(f"batch size must be at least 1, got {batch_size}")
    n = len(pairs)
    if n < batch_size:
        where = f" from {pairs.source}" if getattr(pairs, "source", "") else ""
        raise StRecipeError(
            f"only {n} pairs{where}, but batch size {batch_size} needs at least {batch_size}; "
            "add data or lower the batch size"
        )


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
    text = BUILTIN if source is None else str(source).strip()
    if not text or text.lower() == BUILTIN:
        if anchor_column or positive_column:
            raise StRecipeError("--anchor-column/--positive-column do not apply to the builtin pairs")
        return _load_builtin(split, limit, seed)

    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            raise StRecipeError(f"{text} is a directory; give a file ({', '.join(FILE_SUFFIXES)})")
        return _load_file(path, anchor_column, positive_column, split, limit, seed)
    # A Hub id has exactly one slash; anything else path-shaped is a file the user expected to exist.
    looks_like_path = (
        path.suffix.lower() in FILE_SUFFIXES
        or text.startswith(("./", "../", "/", "~", ".\\"))
        or text.count("/") > 1
        or "\\" in text
    )
    hub = _HUB_ID.match(text)
    if looks_like_path or hub is None:
        if hub is None and not looks_like_path:
            raise StRecipeError(
                f"{text!r} is neither an existing file nor a Hub dataset id (org/name[:config[:split]]); "
                f"use a local file ({', '.join(FILE_SUFFIXES)}) or '{BUILTIN}'"
            )
        raise StRecipeError(f"data file not found: {text}")
    return _load_hub(
        hub["repo"], hub["config"] or None, hub["split"] or split, anchor_column, positive_column,
        True if streaming is None else bool(streaming), limit, seed,
    )


# ----------------------------------------------------------------------------------------------------
# Shared row handling


class _Collector:
    """Turns raw rows into cleaned pairs while counting what was dropped and why."""

    def __init__(self, where: str, unit: str) -> None:
        self.where = where
        self.unit = unit  # "line", "row" or "item": how a position is named in messages
        self.stats = PairStats()
        self.anchors: list[str] = []
        self.positives: list[str] = []
        self._seen: set[tuple[str, str]] = set()
        self._first_empty: int | None = None

    def _text(self, value: Any, column: str, pos: int, allow_list: bool) -> str | None:
        if value is None:
            return ""
        if isinstance(value, str):
            return value.strip()
        if allow_list and isinstance(value, (list, tuple)):
            if not value:
                return None  # a positive list with nothing in it: the row is unusable, not fatal
            return self._text(value[0], column, pos, allow_list=False)
        raise StRecipeError(
            f"{self.where}: {self.unit} {pos}: column '{column}' holds {type(value).__name__} "
            f"({_short(value)}), expected text"
        )

    def add(self, anchor: Any, positive: Any, a_col: str, p_col: str, pos: int) -> bool:
        """Add one row; returns True when it became a new pair."""
        self.stats.rows_read += 1
        a = self._text(anchor, a_col, pos, allow_list=False)
        p = self._text(positive, p_col, pos, allow_list=True)
        if p is None:
            self.stats.skipped_malformed += 1
            return False
        if not a or not p:
            self.stats.skipped_empty += 1
            if self._first_empty is None:
                self._first_empty = pos
            return False
        if (a, p) in self._seen:
            self.stats.duplicates_removed += 1
            return False
        self._seen.add((a, p))
        self.anchors.append(a)
        self.positives.append(p)
        return True

    def malformed(self) -> None:
        """Count a row that cannot be read as a pair but does not stop loading."""
        self.stats.rows_read += 1
        self.stats.skipped_malformed += 1

    def finish(self, columns: str, limit: int | None, seed: int, source: str) -> PairData:
        """Check the proportions, shuffle with the seed and cut to the limit."""
        s = self.stats
        if s.rows_read == 0:
            raise StRecipeError(f"{self.where} has no rows")
        if s.skipped_empty * 2 > s.rows_read:
            raise StRecipeError(
                f"{self.where}: {s.skipped_empty} of {s.rows_read} rows have an empty {columns} "
                f"(first at {self.unit} {self._first_empty}); check the column names "
                "(--anchor-column/--positive-column)"
            )
        if not self.anchors:
            raise StRecipeError(
                f"{self.where}: no usable pairs in {s.rows_read} rows "
                f"({s.skipped_malformed} malformed, {s.skipped_empty} empty)"
            )
        return _shuffle_and_cut(PairData(self.anchors, self.positives, source, s), limit, seed)


def _shuffle_and_cut(data: PairData, limit: int | None, seed: int) -> PairData:
    """Shuffle with the seed, then keep the first `limit` pairs, so a limit is a seeded random sample."""
    data = data.shuffled(seed)
    stats = data.stats
    if limit is not None and len(data) > limit:
        stats.over_limit += len(data) - limit
        data = PairData(data.anchors[:limit], data.positives[:limit], data.source, stats)
    stats.rows_kept = len(data)
    return data


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _pick_columns(
    columns: Iterable[str], anchor_column: str | None, positive_column: str | None, where: str
) -> tuple[str, str]:
    """Choose the anchor and positive column names; an explicit name must exist exactly."""
    present = list(dict.fromkeys(str(c) for c in columns))
    lower = {c.lower(): c for c in reversed(present)}
    shown = ", ".join(present) if present else "none"

    def explicit(name: str, flag: str) -> str:
        if name not in present:
            raise StRecipeError(f"{where}: no column '{name}' (from {flag}); columns found: {shown}")
        return name

    a = explicit(anchor_column, "--anchor-column") if anchor_column else None
    p = explicit(positive_column, "--positive-column") if positive_column else None
    if a and p:
        if a == p:
            raise StRecipeError(f"{where}: anchor and positive column are both '{a}'")
        return a, p
    for cand_a, cand_p in COLUMN_PAIRS:
        # With one name given, only its partner is looked up among the known layouts.
        ca = a or lower.get(cand_a)
        cp = p or lower.get(cand_p)
        if ca and cp and ca != cp:
            return ca, cp
    wanted = " or ".join(f"{x}/{y}" for x, y in COLUMN_PAIRS[:5])
    raise StRecipeError(
        f"{where}: cannot find the anchor and positive columns (looked for {wanted}); columns found: "
        f"{shown}; name them with --anchor-column/--positive-column"
    )


# ----------------------------------------------------------------------------------------------------
# Local files


def _load_file(
    path: Path, anchor_column: str | None, positive_column: str | None, split: str, limit: int | None, seed: int
) -> PairData:
    where = str(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise StRecipeError(
            f"{where}: unsupported file type '{suffix or path.name}'; use one of {', '.join(FILE_SUFFIXES)}"
        )
    if split != "train":
        # A silent fallback would evaluate on training data; a held-out file must be passed explicitly.
        raise StRecipeError(
            f"{where}: a local file has no '{split}' split; pass the held-out pairs as their own file"
        )
    try:
        if suffix == ".parquet":
            with path.open("rb") as fh:
                head = fh.read(4096)
            if len(head) < 4096 and not head.strip():
                raise StRecipeError(f"{where} is empty")
            return _read_parquet(path, anchor_column, positive_column, limit, seed)
        raw = path.read_bytes()
    except OSError as exc:
        raise StRecipeError(f"cannot read {where}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise StRecipeError(f"{where} is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise StRecipeError(
            f"{where} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); re-save it as UTF-8"
        ) from None
    if suffix in (".csv", ".tsv"):
        delimiter = "\t" if suffix == ".tsv" else ","
        return _read_csv(where, text, delimiter, anchor_column, positive_column, limit, seed)
    return _read_json(where, text, anchor_column, positive_column, limit, seed)


def _read_json(
    where: str, text: str, anchor_column: str | None, positive_column: str | None, limit: int | None, seed: int
) -> PairData:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StRecipeError(f"{where}: invalid JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        rows: Iterable[tuple[int, Any]] = enumerate(items, 1)
        unit = "item"
    else:
        rows = _json_lines(where, text)
        unit = "line"
    col = _Collector(where, unit)
    cols: tuple[str, str] | None = None
    for pos, row in rows:
        if not isinstance(row, dict):
            raise StRecipeError(
                f"{where}: {unit} {pos} is a JSON {type(row).__name__}, expected an object with text fields"
            )
        if cols is None:
            cols = _pick_columns(row.keys(), anchor_column, positive_column, f"{where}: {unit} {pos}")
        a, p = cols
        if a not in row or p not in row:
            missing = " and ".join(repr(c) for c in cols if c not in row)
            raise StRecipeError(
                f"{where}: {unit} {pos} has no {missing}; its keys: {', '.join(map(str, row)) or 'none'}"
            )
        col.add(row[a], row[p], a, p, pos)
    if cols is None:
        raise StRecipeError(f"{where} has no rows")
    return col.finish(f"'{cols[0]}' or '{cols[1]}'", limit, seed, where)


def _json_lines(where: str, text: str) -> Iterator[tuple[int, Any]]:
    # str.splitlines() would also break at U+2028 and friends, which JSON allows unescaped inside strings.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise StRecipeError(f"{where}: line {number} is not valid JSON ({exc.msg} at column {exc.colno})") from None


def _read_csv(
    where: str,
    text: str,
    delimiter: str,
    anchor_column: str | None,
    positive_column: str | None,
    limit: int | None,
    seed: int,
) -> PairData:
    # Long passages exceed csv's default 128 KiB field limit; the limit is process-wide, so only raise it.
    if csv.field_size_limit() < 2**30:
        csv.field_size_limit(2**30)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise StRecipeError(f"{where} is empty") from None
    except csv.Error as exc:
        raise StRecipeError(f"{where}: line {reader.line_num}: {exc}") from None
    a, p = _pick_columns(header, anchor_column, positive_column, where)
    ia, ip = header.index(a), header.index(p)
    col = _Collector(where, "line")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise StRecipeError(f"{where}: line {reader.line_num}: {exc}") from None
        if not row or (len(row) == 1 and not row[0].strip() and len(header) > 1):
            continue  # blank line
        if len(row) != len(header):
            # An unquoted delimiter inside a text shifts every later cell, so the row cannot be trusted.
            col.malformed()
            continue
        col.add(row[ia], row[ip], a, p, reader.line_num)
    if col.stats.rows_read == 0:
        raise StRecipeError(f"{where} has a header but no rows")
    return col.finish(f"'{a}' or '{p}'", limit, seed, where)


def _read_parquet(
    path: Path, anchor_column: str | None, positive_column: str | None, limit: int | None, seed: int
) -> PairData:
    import pyarrow.parquet as pq

    where = str(path)
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise StRecipeError(f"{where} is not a readable Parquet file ({_first_line(exc)})") from None
    with pf:
        a, p = _pick_columns(pf.schema_arrow.names, anchor_column, positive_column, where)
        if pf.metadata.num_rows == 0:
            raise StRecipeError(f"{where} has no rows")
        table = pf.read(columns=[a, p])
    col = _Collector(where, "row")
    for pos, (va, vp) in enumerate(zip(table.column(a).to_pylist(), table.column(p).to_pylist()), 1):
        col.add(va, vp, a, p, pos)
    return col.finish(f"'{a}' or '{p}'", limit, seed, where)


def _first_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# ----------------------------------------------------------------------------------------------------
# Hub datasets

_HUB_ID = re.compile(
    r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?::(?P<config>[\w.-]*)(?::(?P<split>[\w.%\[\]:+-]+))?)?$"
)


def _load_hub(
    repo: str,
    config: str | None,
    split: str,
    anchor_column: str | None,
    positive_column: str | None,
    streaming: bool,
    limit: int | None,
    seed: int,
) -> PairData:
    import datasets

    label = repo + (f":{config}" if config else "")
    where = f"Hub dataset '{label}' ({split})"

    def unreachable(exc: BaseException) -> StRecipeError:
        return StRecipeError(
            f"could not load Hub dataset '{label}' split '{split}' ({_first_line(exc)}); check the id, "
            f"or without Hub access use a local file ({', '.join(FILE_SUFFIXES)}) or '{BUILTIN}'"
        )

    try:
        ds = datasets.load_dataset(repo, config, split=split, streaming=streaming)
        if not streaming and limit is not None and len(ds) > limit:
            ds = ds.select(range(limit))
    except StRecipeError:
        raise
    except Exception as exc:  # network, auth, missing repo or split: all surface as one message
        raise unreachable(exc) from None

    col = _Collector(where, "row")
    names = getattr(ds, "column_names", None)
    cols = _pick_columns(names, anchor_column, positive_column, where) if names else None
    try:
        for pos, row in enumerate(ds, 1):
            if cols is None:
                cols = _pick_columns(row.keys(), anchor_column, positive_column, where)
            a, p = cols
            if a not in row or p not in row:
                raise StRecipeError(f"{where}: row {pos} has no '{a}'/'{p}'; its keys: {', '.join(map(str, row))}")
            # Streaming cannot sample the whole set, so a limit reads the first `limit` usable pairs.
            if col.add(row[a], row[p], a, p, pos) and limit is not None and len(col.anchors) >= limit:
                break
    except StRecipeError:
        raise
    except Exception as exc:
        raise unreachable(exc) from None
    if cols is None:
        raise StRecipeError(f"{where} has no rows")
    return col.finish(f"'{cols[0]}' or '{cols[1]}'", limit, seed, f"hub:{label}:{split}")


# ----------------------------------------------------------------------------------------------------
# The built-in pairs mined from docstrings

# Packages st-recipe depends on (directly or through torch/datasets), so they are present wherever it
# runs. Chosen for the most prose-rich docstrings per second of parsing; all of torch and transformers
# would add ~40 s, so only torch.nn is read.
_BUILTIN_PACKAGES: tuple[tuple[str, str], ...] = (
    # (import path, distribution name)
    ("click", "click"),
    ("jinja2", "jinja2"),
    ("packaging", "packaging"),
    ("fsspec", "fsspec"),
    ("huggingface_hub", "huggingface_hub"),
    ("sentence_transformers", "sentence-transformers"),
    ("accelerate", "accelerate"),
    ("networkx", "networkx"),
    ("numpy", "numpy"),
    ("torch/nn", "torch"),
)
_SKIP_DIRS = frozenset(
    {
        "test", "tests", "testing", "_testing", "idle_test", "site-packages", "dist-packages", "__pycache__",
        "turtledemo", "_bundled", "encodings", "pydoc_data", "_vendor", "vendor", "_vendored", "vendored",
        "benchmarks", "lib2to3", "f2py",
    }
)
# Big files whose strings are not docstrings (numpy attaches its C functions' docs at import time).
_SKIP_FILES = frozenset({"_add_newdocs.py", "_add_newdocs_scalars.py"})
_HELD_OUT_FRACTION = 0.05
_HELD_OUT_MIN = 500
_MAX_POSITIVE_CHARS = 1500
_MAX_DOCSTRING_CHARS = 8000
_CACHE_KEEP = 4  # builtin caches kept per cache dir (one per environment and st-recipe version)

_MEMO: dict[str, tuple[list[tuple[str, str]], PairStats]] = {}


def _load_builtin(split: str, limit: int | None, seed: int) -> PairData:
    if split not in ("train", "test"):
        raise StRecipeError(f"the builtin pairs have splits 'train' and 'test', not {split!r}")
    pool, built = _builtin_pool()
    train, test = _split_builtin(pool)
    chosen = train if split == "train" else test
    stats = PairStats(
        rows_read=built.rows_read,
        skipped_empty=built.skipped_empty,
        skipped_malformed=built.skipped_malformed,
        duplicates_removed=built.duplicates_removed,
    )
    data = PairData([a for a, _ in chosen], [p for _, p in chosen], f"{BUILTIN}:{split}", stats)
    return _shuffle_and_cut(data, limit, seed)


def _split_builtin(pool: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Hold out the pairs whose anchors hash lowest; the pool already has every text at most once."""
    n_test = max(round(len(pool) * _HELD_OUT_FRACTION), min(_HELD_OUT_MIN, len(pool) // 2))
    ranked = sorted(range(len(pool)), key=lambda i: _stable_hash(pool[i][0]))
    test_ids = set(ranked[:n_test])
    train = [pair for i, pair in enumerate(pool) if i not in test_ids]
    test = [pair for i, pair in enumerate(pool) if i in test_ids]
    return train, test


def _stable_hash(text: str) -> bytes:
    return hashlib.blake2b(text.lower().encode("utf-8"), digest_size=8).digest()


def _builtin_roots() -> list[tuple[str, str, Path]]:
    """(label, version, directory) for every source of builtin docstrings present here."""
    import importlib.metadata
    import importlib.util
    import sysconfig

    roots = [("stdlib", sys.version.split()[0], Path(sysconfig.get_paths()["stdlib"]))]
    for name, dist in _BUILTIN_PACKAGES:
        top, *sub = name.split("/")
        try:
            spec = importlib.util.find_spec(top)  # locates without importing
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.submodule_search_locations:
            continue
        base = Path(list(spec.submodule_search_locations)[0]).joinpath(*sub)
        if not base.is_dir():
            continue
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        roots.append((name, version, base))
    return roots


def _cache_dir() -> Path:
    explicit = os.environ.get("ST_RECIPE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "st_recipe"


def _builtin_pool() -> tuple[list[tuple[str, str]], PairStats]:
    roots = _builtin_roots()
    try:
        # Any edit to the mining rules (this file) must invalidate old disk caches.
        rules = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    except OSError:
        rules = "unknown"
    key_src = json.dumps([rules, sys.version, [(n, v, str(p)) for n, v, p in roots]])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    if key in _MEMO:
        return _MEMO[key]
    cache_file = _cache_dir() / f"builtin-pairs-{key}.json"
    try:
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
        result = ([(a, p) for a, p in cached["pairs"]], PairStats(**cached["stats"]))
        _touch(cache_file)
    except (OSError, ValueError, KeyError, TypeError):
        result = _mine_docstrings([p for _, _, p in roots])
        _write_cache(cache_file, result)
    _MEMO[key] = result
    return result


def _write_cache(cache_file: Path, result: tuple[list[tuple[str, str]], PairStats]) -> None:
    # The cache only saves time, so an unwritable home must not stop training.
    tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader never sees half a file.
        tmp.write_text(json.dumps({"pairs": result[0], "stats": asdict(result[1])}), encoding="utf-8")
        os.replace(tmp, cache_file)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        return
    # Upgrades and other environments leave old caches behind; keep only the most recently used few.
    try:
        caches = sorted(
            cache_file.parent.glob("builtin-pairs-*.json"), key=lambda f: f.stat().st_mtime, reverse=True
        )
        for stale in caches[_CACHE_KEEP:]:
            stale.unlink()
    except OSError:
        pass


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _python_files(root: Path) -> Iterator[Path]:
    """Source files under root in sorted order, skipping tests, vendored code and other packages."""
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py") and not name.startswith(("test_", "conftest")) and name not in _SKIP_FILES:
                yield Path(current, name)


# A file's yield: (docstrings read, without a body, rejected as junk, kept pairs in source order).
_FileYield = tuple[int, int, int, list[tuple[str, str]]]


def _mine_docstrings(roots: list[Path]) -> tuple[list[tuple[str, str]], PairStats]:
    files = [str(path) for root in roots for path in _python_files(root)]
    yields = _mine_in_workers(files) or [_mine_file(f) for f in files]
    stats = PairStats()
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()  # one set for both roles, so no text appears twice anywhere
    # Dedupe after the fact in file order, so the result is the same however the work was split.
    for read, empty, junk, found in yields:
        stats.rows_read += read
        stats.skipped_empty += empty
        stats.skipped_malformed += junk
        for anchor, positive in found:
            ka, kp = _dedupe_key(anchor), _dedupe_key(positive)
            if ka in seen or kp in seen or ka == kp:
                stats.duplicates_removed += 1
                continue
            seen.update((ka, kp))
            pairs.append((anchor, positive))
    stats.rows_kept = len(pairs)
    return pairs, stats


def _mine_file(path: str) -> _FileYield:
    try:
        source = Path(path).read_bytes()
    except OSError:
        return (0, 0, 0, [])
    if b'"""' not in source and b"'''" not in source:
        return (0, 0, 0, [])  # almost every docstring is triple-quoted; skipping the parse saves time
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return (0, 0, 0, [])
    read = empty = junk = 0
    found: list[tuple[str, str]] = []
    for doc in _docstrings(tree.body):
        read += 1
        pair = _docstring_pair(doc)
        if pair is None:
            junk += 1
        elif not pair[1]:
            empty += 1
        else:
            found.append(pair)
    return (read, empty, junk, found)


def _worker_count(n_files: int) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8, n_files // 150))


def _mine_in_workers(files: list[str]) -> list[_FileYield] | None:
    """Parse in parallel child interpreters; None when that is not worth it or fails (then run inline).

    ast.parse holds the GIL, so threads do not help. Plain subprocesses are used instead of
    multiprocessing because its spawn mode re-imports the caller's __main__, which breaks user scripts
    that call load_pairs() without an ``if __name__ == "__main__"`` guard.
    """
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    n = _worker_count(len(files))
    if n < 2 or not sys.executable:
        return None
    chunks = [files[i::n] for i in range(n)]  # interleaved, so big packages spread over all workers
    package_parent = str(Path(__file__).resolve().parents[2])
    code = (
        f"import sys; sys.path.insert(0, {package_parent!r}); "
        "from st_recipe.data import _worker_main; _worker_main()"
    )

    def run(job: tuple[subprocess.Popen[bytes], list[str]]) -> bytes:
        return job[0].communicate(json.dumps(job[1]).encode(), timeout=300)[0]

    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in chunks:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-I", "-c", code],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                )
            )
        # One thread per child feeds its stdin and drains its stdout, so no pipe fills up and stalls.
        with ThreadPoolExecutor(n) as pool:
            outputs = list(pool.map(run, zip(procs, chunks)))
        if any(p.returncode != 0 for p in procs):
            return None
        parts = [json.loads(out) for out in outputs]
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    yields: list[_FileYield] = [(0, 0, 0, [])] * len(files)
    for offset, part in enumerate(parts):
        if len(part) != len(chunks[offset]):
            return None
        for j, (read, empty, junk, found) in enumerate(part):
            yields[offset + j * n] = (read, empty, junk, [(a, p) for a, p in found])
    return yields


def _worker_main() -> None:
    """Entry point of a mining child: file paths (JSON) on stdin, their yields (JSON) on stdout."""
    files = json.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(json.dumps([_mine_file(f) for f in files]).encode())


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _docstrings(body: list[ast.stmt]) -> Iterator[str]:
    """Docstrings of a module/class/function body and of every definition nested in it."""
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        yield first.value.value
    yield from _nested(body)


def _nested(body: list[ast.stmt]) -> Iterator[str]:
    # Only statement lists can hold definitions; skipping expressions is much faster than ast.walk.
    for stmt in body:
        if isinstance(stmt, _DEFS):
            yield from _docstrings(stmt.body)
            continue
        for name in ("body", "orelse", "finalbody"):
            block = getattr(stmt, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield from _nested(block)
        for handler in getattr(stmt, "handlers", None) or ():
            yield from _nested(handler.body)
        for case in getattr(stmt, "cases", None) or ():
            yield from _nested(case.body)


# Two word characters before the stop keep "e.g. Foo" and initials together but split after "HTML."
_SENTENCE_END = re.compile(r"(?<=[A-Za-z0-9)\]'\"`]{2}[.!?])\s+(?=[A-Z(`'\"])")
_ROLE = re.compile(r":[\w:.+-]+:`~?([^`<]*?)\s*(?:<[^>]*>)?`")
_UNDERLINE = re.compile(r"^\s*([-=~^*+#\"'`])\1{2,}\s*$")
_SIGNATURE = re.compile(r"^[\w.]+\s*\(.*\)\s*(->.*)?$")
_GOOGLE_HEADER = re.compile(r"^[A-Z][a-z]+(?: [A-Za-z]+)?:$")
_DROP_SECTIONS = frozenset({"see also", "references", "examples", "example"})
_WORD = re.compile(r"[A-Za-z]{2,}")
_NOT_LETTER = re.compile(r"[^A-Za-z]+")


def _docstring_pair(doc: str) -> tuple[str, str] | None:
    """(summary sentence, cleaned rest) for a usable docstring; None if it is junk; an empty rest if none."""
    import inspect

    text = inspect.cleandoc(doc[:_MAX_DOCSTRING_CHARS])
    head, rest = _split_first_paragraph(text)
    first_para = " ".join(head.split())
    parts = _SENTENCE_END.split(first_para, maxsplit=1)
    anchor = _inline(parts[0])
    if not _good_anchor(anchor):
        return None
    tail = parts[1] if len(parts) > 1 else ""
    positive = _inline(_strip_blocks(tail + "\n\n" + rest))
    if len(positive.split()) < 8:
        return (anchor, "")
    if len(positive) > _MAX_POSITIVE_CHARS:
        cut = positive.rfind(" ", 0, _MAX_POSITIVE_CHARS)
        positive = positive[: cut if cut > 0 else _MAX_POSITIVE_CHARS]
    if not _englishish(positive):
        return None
    return anchor, positive


def _split_first_paragraph(text: str) -> tuple[str, str]:
    parts = re.split(r"\n[ \t]*\n", text.strip(), maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def _good_anchor(anchor: str) -> bool:
    words = anchor.split()
    if not 4 <= len(words) <= 60 or not anchor[0].isalnum() or anchor.endswith((":", ",", ";")):
        return False
    if _SIGNATURE.match(anchor) or "copyright" in anchor.lower():
        return False
    return _englishish(anchor)


def _englishish(text: str) -> bool:
    """Mostly ASCII letters and real words: rejects code, tables, symbol art and other languages."""
    dense = len(text) - text.count(" ")
    if dense == 0:
        return False
    if len(text) - len(text.encode("ascii", "ignore")) > 0.03 * len(text):
        return False
    if len(_NOT_LETTER.sub("", text)) < 0.7 * dense:
        return False
    return len(_WORD.findall(text)) >= 0.6 * len(text.split())


def _inline(text: str) -> str:
    """Remove reST inline markup and collapse whitespace."""
    text = _ROLE.sub(r"\1", text)
    text = text.replace("``", "").replace("`", "")
    return " ".join(text.split())


def _strip_blocks(text: str) -> str:
    """Drop doctests, literal blocks, directives, section underlines and reference-like sections."""
    out: list[str] = []
    lines = text.splitlines()
    literal_indent: int | None = None
    in_doctest = False
    dropping_section = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if literal_indent is not None:
            if not stripped or indent > literal_indent:
                continue
            literal_indent = None
        if in_doctest:
            if stripped:
                continue
            in_doctest = False
        if stripped.startswith(">>>"):
            in_doctest = True
            continue
        if _UNDERLINE.match(nxt) and stripped and not _UNDERLINE.match(line):
            # A section header: keep prose sections, skip the ones that are lists of names or citations.
            dropping_section = stripped.lower() in _DROP_SECTIONS
            continue
        if _UNDERLINE.match(line):
            continue
        if indent == 0 and stripped.endswith(":") and _GOOGLE_HEADER.match(stripped):
            # A Google-style "Args:"/"Examples:" header starts a new section.
            dropping_section = stripped[:-1].lower() in _DROP_SECTIONS
            if dropping_section:
                continue
        if dropping_section:
            continue
        if stripped.startswith(".. "):
            # A directive's own arguments are markup; a code block's body is code.
            if "code" in stripped or "literal" in stripped or "math" in stripped:
                literal_indent = indent
            continue
        if stripped.endswith("::"):
            literal_indent = indent
            line = line.rstrip()[:-1]
            if line.strip() == ":":
                continue
        out.append(line)
    return "\n".join(out)


def _dedupe_key(text: str) -> str:
    return " ".join(text.lower().split())
