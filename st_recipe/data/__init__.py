"""(anchor, positive) text pairs for contrastive training: local files, Hub datasets, and a built-in default.

Sources accepted by :func:`load_pairs`:

* ``"builtin"``: an offline default that needs no download: a fixed, versioned set of pairs shipped
  in this package (``builtin_pairs_v1.jsonl.gz``, described in ``BUILTIN_PAIRS.md``), the same
  wherever st-recipe is installed. It was mined once, by ``scripts/mine_builtin_pairs.py`` in the
  repository, from the docstrings of the Python standard library and of packages st-recipe depends on:
  the anchor is a docstring's summary sentence, the positive is the rest of that docstring with
  doctests, literal code blocks, underlines and "See Also"/"References" sections removed. Real
  human-written text, not templates; no text occurs twice. The file's split column holds out
  ``split="test"`` (500 pairs, chosen by a hash of the anchor), so train and test never share a text.
  Loading checks the file against :data:`BUILTIN_SHA256` and keeps it in memory for the process.
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

import csv
import gzip
import hashlib
import importlib.resources
import io
import json
import os
import random
import re
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sized

from st_recipe.errors import StRecipeError

if TYPE_CHECKING:  # pragma: no cover
    from importlib.resources.abc import Traversable

    import datasets

__all__ = [
    "BATCH_SAMPLER", "BUILTIN", "BUILTIN_SHA256", "BUILTIN_VERSION", "COLUMN_PAIRS", "PairData", "PairStats",
    "check_enough", "load_pairs",
]

BUILTIN = "builtin"
# The shipped builtin set (BUILTIN_PAIRS.md); a different set of pairs gets a new version and file.
BUILTIN_VERSION = "v1"
# sha256 of the decompressed file, as printed by scripts/mine_builtin_pairs.py; checked on every load.
BUILTIN_SHA256 = "3535a160a648b8809a55cbd7b5bd8c186e1b484f49184fc99d72b61f788747bb"
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

    For ``builtin`` a row is one pair of the chosen split in the shipped file, so ``rows_read`` is that
    split's size (7,564 train or 500 test in v1); the file was cleaned and deduplicated when it was mined
    (BUILTIN_PAIRS.md has those counts), so ``skipped_empty``, ``skipped_malformed`` and
    ``duplicates_removed`` are 0. For files, ``skipped_malformed`` counts ragged CSV rows and BGE rows
    whose ``pos`` list is empty. ``rows_kept`` is the number of pairs returned and ``over_limit`` counts
    pairs dropped by ``limit``.
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
    src = classify_source(source)
    if src.kind == "builtin":
        if anchor_column or positive_column:
            raise StRecipeError("--anchor-column/--positive-column do not apply to the builtin pairs")
        return _load_builtin(split, limit, seed)
    if src.kind == "file":
        return _load_file(src.path, anchor_column, positive_column, split, limit, seed)  # type: ignore[arg-type]
    return _load_hub(
        src.repo, src.config, src.split or split, anchor_column, positive_column,  # type: ignore[arg-type]
        True if streaming is None else bool(streaming), limit, seed,
    )


def recorded_hub_id(source: str) -> str | None:
    """The Hub dataset repo named by a source string as a run record holds it (no file-system check), else None."""
    if source.lower().endswith(FILE_SUFFIXES) or os.path.isabs(source) or source.startswith((".", "~")):
        return None
    m = _HUB_ID.match(source)
    return m["repo"] if m else None


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
    if not text or text.lower() == BUILTIN:
        return DataSource("builtin", BUILTIN)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            raise StRecipeError(f"{text} is a directory; give a file ({', '.join(FILE_SUFFIXES)})")
        return DataSource("file", text, path=path)
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
    return DataSource("hub", text, repo=hub["repo"], config=hub["config"] or None, split=hub["split"] or None)


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
# The built-in pairs, shipped as a file in this package

_BUILTIN_FILE = f"builtin_pairs_{BUILTIN_VERSION}.jsonl.gz"

# Parsed splits by resource path: (anchors, positives) in file order. Never handed out, only copied.
_MEMO: dict[str, dict[str, tuple[list[str], list[str]]]] = {}


def _load_builtin(split: str, limit: int | None, seed: int) -> PairData:
    if split not in ("train", "test"):
        raise StRecipeError(f"the builtin pairs have splits 'train' and 'test', not {split!r}")
    anchors, positives = _builtin_splits()[split]
    stats = PairStats(rows_read=len(anchors))
    data = PairData(list(anchors), list(positives), f"{BUILTIN}:{split}", stats)
    return _shuffle_and_cut(data, limit, seed)


def _builtin_path() -> Traversable:
    """The shipped file, as a resource so that wheels, editable installs and zipped packages all work."""
    return importlib.resources.files(__name__).joinpath(_BUILTIN_FILE)


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
        raise StRecipeError(f"{where} is corrupted ({_first_line(exc)}); reinstall st-recipe") from None
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
