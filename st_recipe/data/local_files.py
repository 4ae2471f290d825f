"""Pairs from a local file, one reader per format behind :data:`READERS` (a new format is one entry).

``.jsonl``/``.ndjson``/``.json`` hold JSON lines or one JSON array of objects; ``.csv`` and ``.tsv`` have a
header row; ``.parquet`` is read with pyarrow. Text formats must be UTF-8 (a byte-order mark is allowed).
Local files have no splits.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from st_recipe._io import loads_json
from st_recipe.data.pairs import Collector, PairData, first_line, negative_columns, pick_columns
from st_recipe.errors import StRecipeError

# reader(path, anchor_column, positive_column, limit, seed) -> PairData
Reader = Callable[[Path, str | None, str | None, int | None, int], PairData]


def load_file(
    path: Path, anchor_column: str | None, positive_column: str | None, split: str, limit: int | None, seed: int
) -> PairData:
    """Pairs from a local file of a type in :data:`FILE_SUFFIXES`, shuffled with `seed` and cut to `limit`."""
    where = str(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise StRecipeError(
            f"{where}: unsupported file type '{suffix or path.name}'; use one of {', '.join(FILE_SUFFIXES)}"
        )
    if split != "train":
        # A silent fallback would evaluate on training data; a held-out file must be passed explicitly.
        raise StRecipeError(
            f"{where}: a local file has no '{split}' split; pass the held-out pairs as their own file"
        )
    try:
        return READERS[suffix](path, anchor_column, positive_column, limit, seed)
    except OSError as exc:
        raise StRecipeError(f"cannot read {where}: {exc.strerror or exc}") from None


def _read_text(path: Path) -> str:
    """The file as text: one-line errors for an empty file and for bytes that are not UTF-8."""
    where = str(path)
    raw = path.read_bytes()
    if not raw.strip():
        raise StRecipeError(f"{where} is empty")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise StRecipeError(
            f"{where} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); re-save it as UTF-8"
        ) from None


# ----------------------------------------------------------------------------------------------------
# JSON lines and JSON arrays


def _read_json(
    path: Path, anchor_column: str | None, positive_column: str | None, limit: int | None, seed: int
) -> PairData:
    where = str(path)
    text = _read_text(path)
    stripped = text.lstrip()
    if stripped.startswith("["):
        items = loads_json(text, where)
        rows: Iterable[tuple[int, Any]] = enumerate(items, 1)
        unit = "item"
    else:
        rows = _json_lines(where, text)
        unit = "line"
    col = Collector(where, unit)
    cols: tuple[str, str] | None = None
    for pos, row in rows:
        if not isinstance(row, dict):
            raise StRecipeError(
                f"{where}: {unit} {pos} is a JSON {type(row).__name__}, expected an object with text fields"
            )
        if cols is None:
            cols = pick_columns(row.keys(), anchor_column, positive_column, f"{where}: {unit} {pos}")
        a, p = cols
        if a not in row or p not in row:
            missing = " and ".join(repr(c) for c in cols if c not in row)
            raise StRecipeError(
                f"{where}: {unit} {pos} has no {missing}; its keys: {', '.join(map(str, row)) or 'none'}"
            )
        col.add(row[a], row[p], a, p, pos, row)
    if cols is None:
        raise StRecipeError(f"{where} has no rows")
    return col.finish(f"'{cols[0]}' or '{cols[1]}'", limit, seed, where)


def _json_lines(where: str, text: str) -> Iterator[tuple[int, Any]]:
    # str.splitlines() would also break at U+2028 and friends, which JSON allows unescaped inside strings.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        yield number, loads_json(line, f"{where}: line {number}")


# ----------------------------------------------------------------------------------------------------
# CSV and TSV


def _read_delimited(
    path: Path,
    delimiter: str,
    anchor_column: str | None,
    positive_column: str | None,
    limit: int | None,
    seed: int,
) -> PairData:
    where = str(path)
    text = _read_text(path)
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
    a, p = pick_columns(header, anchor_column, positive_column, where)
    ia, ip = header.index(a), header.index(p)
    col = Collector(where, "line")
    col.negative_columns = negative_columns(header, (a, p))
    neg_index = [(name, header.index(name)) for name in col.negative_columns]
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
        col.add(row[ia], row[ip], a, p, reader.line_num, {name: row[i] for name, i in neg_index})
    if col.stats.rows_read == 0:
        raise StRecipeError(f"{where} has a header but no rows")
    return col.finish(f"'{a}' or '{p}'", limit, seed, where)


def _read_csv(
    path: Path, anchor_column: str | None, positive_column: str | None, limit: int | None, seed: int
) -> PairData:
    return _read_delimited(path, ",", anchor_column, positive_column, limit, seed)


def _read_tsv(
    path: Path, anchor_column: str | None, positive_column: str | None, limit: int | None, seed: int
) -> PairData:
    return _read_delimited(path, "\t", anchor_column, positive_column, limit, seed)


# ----------------------------------------------------------------------------------------------------
# Parquet


def _read_parquet(
    path: Path, anchor_column: str | None, positive_column: str | None, limit: int | None, seed: int
) -> PairData:
    where = str(path)
    with path.open("rb") as fh:
        head = fh.read(4096)
    if len(head) < 4096 and not head.strip():
        raise StRecipeError(f"{where} is empty")
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise StRecipeError(f"{where} is not a readable Parquet file ({first_line(exc)})") from None
    with pf:
        a, p = pick_columns(pf.schema_arrow.names, anchor_column, positive_column, where)
        if pf.metadata.num_rows == 0:
            raise StRecipeError(f"{where} has no rows")
        negs = negative_columns(pf.schema_arrow.names, (a, p))
        table = pf.read(columns=[a, p, *negs])
    col = Collector(where, "row")
    col.negative_columns = negs
    neg_values = [table.column(n).to_pylist() for n in negs]
    for pos, (va, vp) in enumerate(zip(table.column(a).to_pylist(), table.column(p).to_pylist()), 1):
        col.add(va, vp, a, p, pos, {n: vals[pos - 1] for n, vals in zip(negs, neg_values)})
    return col.finish(f"'{a}' or '{p}'", limit, seed, where)


# The readers by lower-cased file suffix; their order is the order messages list them in.
READERS: dict[str, Reader] = {
    ".jsonl": _read_json,
    ".ndjson": _read_json,
    ".json": _read_json,
    ".csv": _read_csv,
    ".tsv": _read_tsv,
    ".parquet": _read_parquet,
}
FILE_SUFFIXES: tuple[str, ...] = tuple(READERS)
