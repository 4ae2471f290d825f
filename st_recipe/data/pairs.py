"""The pairs every source yields: :class:`PairData`, its counts, and the row handling all readers share.

A reader feeds raw rows to a :class:`Collector`, which cleans them (strip, drop empty and exact-duplicate
pairs, take the first of a BGE ``pos`` list), counts what it dropped, then shuffles with the seed and cuts to
the limit. :func:`pick_columns` finds the anchor and positive columns (:data:`COLUMN_PAIRS`) and
:func:`negative_columns` the hard-negative ones (``negative``, ``negative_1``…, a BGE ``neg`` list), which
every pair keeps as a list (possibly empty) so a recipe can train with them.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sized

from st_recipe.errors import StRecipeError

if TYPE_CHECKING:  # pragma: no cover
    import datasets

# The value of sentence_transformers' BatchSamplers.NO_DUPLICATES, which the trainer must use.
BATCH_SAMPLER = "no_duplicates"

# Hard-negative columns: one text each (negative, negative_2, neg1, …) or a list (BGE's neg, negatives).
NEGATIVE_COLUMN = re.compile(r"^(hard_?)?(neg|negs|negative|negatives)(_?\d+)?$", re.IGNORECASE)
MAX_NEGATIVES = 64


def check_negative_count(k: Any, name: str = "--hard-negatives", minimum: int = 0) -> int:
    """A number of hard negatives per pair: an integer in [minimum, MAX_NEGATIVES]; one-line error naming ``name``."""
    if isinstance(k, bool) or not isinstance(k, int) or not minimum <= k <= MAX_NEGATIVES:
        raise StRecipeError(f"{name} must be an integer in [{minimum}, {MAX_NEGATIVES}], not {k!r}")
    return k

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
    pairs dropped by ``limit``. ``with_negatives`` counts kept pairs with at least one hard negative and
    ``few_negatives`` the pairs a run left out for having fewer than its ``hard_negatives``.
    """

    rows_read: int = 0
    rows_kept: int = 0
    skipped_empty: int = 0
    skipped_malformed: int = 0
    duplicates_removed: int = 0
    over_limit: int = 0
    with_negatives: int = 0
    few_negatives: int = 0

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
    # Per pair, its hard negatives (possibly none); None when the source has no negative column.
    negatives: list[list[str]] | None = None

    def __post_init__(self) -> None:
        if len(self.anchors) != len(self.positives):
            raise StRecipeError(
                f"{len(self.anchors)} anchors but {len(self.positives)} positives; they must pair up"
            )
        if self.negatives is not None and len(self.negatives) != len(self.anchors):
            raise StRecipeError(f"{len(self.anchors)} pairs but {len(self.negatives)} negative lists; they must line up")

    def take(self, indices: Iterable[int], source: str | None = None) -> PairData:
        """The pairs at ``indices`` (in that order), negatives included; counts are copied."""
        idx = list(indices)
        negs = None if self.negatives is None else [list(self.negatives[i]) for i in idx]
        return PairData([self.anchors[i] for i in idx], [self.positives[i] for i in idx],
                        self.source if source is None else source, replace(self.stats), negs)

    @property
    def has_negatives(self) -> bool:
        """Whether any pair carries a hard negative."""
        return bool(self.negatives) and any(self.negatives)  # type: ignore[arg-type]

    def negative_counts(self) -> tuple[int, int]:
        """(pairs with at least one negative, the largest number of negatives of a pair)."""
        counts = [len(n) for n in self.negatives or []]
        return sum(1 for c in counts if c), max(counts, default=0)

    def with_negatives(self, k: int) -> PairData:
        """The pairs with at least ``k`` hard negatives, each cut to its first ``k``; the rest are counted, not kept."""
        if not self.has_negatives:
            raise StRecipeError(
                f"--hard-negatives {k}: {self.source or 'the data'} has no hard negatives (no 'negative', "
                "'negative_1'… or BGE 'neg' column); mine them with `st-recipe mine` or `train --mine-negatives K`")
        keep = [i for i, n in enumerate(self.negatives or []) if len(n) >= k]
        if len(keep) < 2:
            most = self.negative_counts()[1]
            raise StRecipeError(f"--hard-negatives {k}: only {len(keep)} pairs of {len(self)} have {k} or more hard "
                                f"negatives (the most any pair has is {most}); lower --hard-negatives")
        out = self.take(keep)
        out.negatives = [n[:k] for n in out.negatives or []]
        out.stats.few_negatives = len(self) - len(keep)
        return out

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
        return self.take(order)

    def to_dataset(self, hard_negatives: int = 0) -> datasets.Dataset:
        """A `datasets.Dataset` with columns `anchor`, `positive`, then `negative_1`… (the order the losses read)."""
        import datasets

        columns: dict[str, list[str]] = {"anchor": list(self.anchors), "positive": list(self.positives)}
        if hard_negatives:
            negs = self.negatives or []
            if len(negs) != len(self) or any(len(n) < hard_negatives for n in negs):
                raise StRecipeError(f"every pair needs {hard_negatives} hard negatives; use with_negatives() first")
            for j in range(hard_negatives):
                columns[f"negative_{j + 1}"] = [n[j] for n in negs]
        return datasets.Dataset.from_dict(columns)


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


def tokenizable(text: str, where: str) -> str:
    """``text`` stripped, as a tokenizer can take it: "" when nothing but control characters is left.

    Where text enters (every pair reader), so the tokenizer never sees what it rejects: a lone surrogate
    (JSON's "\\ud800" decodes to one) cannot be encoded as UTF-8 and is a one-line error naming the place;
    text of NUL and other control characters only holds nothing to embed, so it counts as empty.
    """
    text = text.strip()
    if text.isascii():
        return text if text.isprintable() or not _only_controls(text) else ""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StRecipeError(f"{where} is not valid Unicode text (a lone surrogate {text[exc.start]!r} at character "
                            f"{exc.start + 1}); tokenizers reject it") from None
    return text if text.isprintable() or not _only_controls(text) else ""


def _only_controls(text: str) -> bool:
    import unicodedata

    return all(unicodedata.category(c)[0] in "CZ" for c in text)


class Collector:
    """Turns raw rows into cleaned pairs while counting what was dropped and why."""

    def __init__(self, where: str, unit: str) -> None:
        self.where = where
        self.unit = unit  # "line", "row" or "item": how a position is named in messages
        self.stats = PairStats()
        self.anchors: list[str] = []
        self.positives: list[str] = []
        self.negatives: list[list[str]] = []
        # The hard-negative columns, or None to look for them in each row (JSON rows need not share keys).
        self.negative_columns: list[str] | None = None
        self.saw_negative_column = False
        self._seen: set[tuple[str, str]] = set()
        self._first_empty: int | None = None

    def _text(self, value: Any, column: str, pos: int, allow_list: bool) -> str | None:
        if value is None:
            return ""
        if isinstance(value, str):
            return tokenizable(value, f"{self.where}: {self.unit} {pos}: column '{column}'")
        if allow_list and isinstance(value, (list, tuple)):
            if not value:
                return None  # a positive list with nothing in it: the row is unusable, not fatal
            return self._text(value[0], column, pos, allow_list=False)
        raise StRecipeError(
            f"{self.where}: {self.unit} {pos}: column '{column}' holds {type(value).__name__} "
            f"({_short(value)}), expected text"
        )

    def _negatives(self, row: dict[str, Any], a: str, p: str, pos: int, a_col: str, p_col: str) -> list[str]:
        out: list[str] = []
        columns = self.negative_columns
        if columns is None:
            columns = negative_columns(row.keys(), (a_col, p_col))
        if columns:
            self.saw_negative_column = True
        for column in columns:
            value = row.get(column)
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                if item is None:
                    continue
                if not isinstance(item, str):
                    raise StRecipeError(f"{self.where}: {self.unit} {pos}: column '{column}' holds "
                                        f"{type(item).__name__} ({_short(item)}), expected text or a list of texts")
                text = tokenizable(item, f"{self.where}: {self.unit} {pos}: column '{column}'")
                # A "negative" equal to the positive (or the anchor) would teach the model to push it away.
                if text and text not in (a, p) and text not in out:
                    out.append(text)
        return out[:MAX_NEGATIVES]

    def add(self, anchor: Any, positive: Any, a_col: str, p_col: str, pos: int,
            row: dict[str, Any] | None = None) -> bool:
        """Add one row (``row``: all its columns, where the hard negatives are read); True when it became a new pair."""
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
        self.negatives.append(self._negatives(row, a, p, pos, a_col, p_col) if row is not None else [])
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
        negatives = self.negatives if self.saw_negative_column else None
        return shuffle_and_cut(PairData(self.anchors, self.positives, source, s, negatives), limit, seed)


def shuffle_and_cut(data: PairData, limit: int | None, seed: int) -> PairData:
    """Shuffle with the seed, then keep the first `limit` pairs, so a limit is a seeded random sample."""
    data = data.shuffled(seed)
    if limit is not None and len(data) > limit:
        over = len(data) - limit
        data = data.take(range(limit))
        data.stats.over_limit += over
    data.stats.rows_kept = len(data)
    data.stats.with_negatives = data.negative_counts()[0]
    return data


def negative_columns(columns: Iterable[str], taken: Iterable[str]) -> list[str]:
    """The hard-negative columns among ``columns`` (not the anchor/positive ones), in numeric order."""
    used = set(taken)
    found = [str(c) for c in dict.fromkeys(columns) if str(c) not in used and NEGATIVE_COLUMN.match(str(c))]

    def order(name: str) -> tuple[int, str]:
        digits = NEGATIVE_COLUMN.match(name).group(3)  # type: ignore[union-attr]
        return (int(digits.lstrip("_")) if digits else 0, name)

    return sorted(found, key=order)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def first_line(exc: BaseException) -> str:
    """An exception as one short line (its type and the first line of its message), for one-line errors."""
    text = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def pick_columns(
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
