#!/usr/bin/env python3
"""Mine st-recipe's builtin (anchor, positive) pairs from Python docstrings and write the shipped dataset.

This script lives in the repository and is not part of the installed package: st-recipe only reads the
file it writes, ``st_recipe/data/builtin_pairs_<version>.jsonl.gz``, and its description
``st_recipe/data/BUILTIN_PAIRS.md``. Mining is done once per dataset version; the output depends on the
exact Python version (its standard library) and the versions of the packages read, which are pinned in
``MINED_WITH`` below. Run in that environment it reproduces both committed files byte for byte::

    python scripts/mine_builtin_pairs.py           # write both files and print a summary
    python scripts/mine_builtin_pairs.py --check   # mine, compare with the committed files, write nothing

A pair is one docstring: the anchor is its summary sentence, the positive the rest of it with doctests,
literal code blocks, directives, section underlines and "See also"/"References"/"Examples" sections
removed and reST inline markup stripped. Docstrings without enough prose, and anything that looks like
code, tables or non-English text, are rejected. No text (compared case- and whitespace-insensitively)
occurs twice anywhere in the set, in either role. The held-out ``test`` split is the 5 % of pairs (at
least 500) whose anchors hash lowest, so it does not move when unrelated pairs are added or removed.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import importlib.metadata
import importlib.util
import inspect
import io
import json
import os
import re
import sys
import sysconfig
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

VERSION = "v1"
DATA_NAME = f"builtin_pairs_{VERSION}.jsonl.gz"
MANIFEST_NAME = "BUILTIN_PAIRS.md"
DEFAULT_OUT_DIR = Path(__file__).resolve().parents[1] / "st_recipe" / "data"


class Source(NamedTuple):
    """One body of docstrings: its label in the dataset, where its code is, and its licence."""

    label: str
    import_path: str  # "" for the standard library; "torch/nn" reads one subpackage
    dist: str  # distribution name for the version lookup; "" for the standard library
    licence: str  # checked by hand against the distribution's metadata and licence files


# Packages st-recipe depends on (directly or through torch/datasets), chosen for the most prose-rich
# docstrings per second of parsing; all of torch and transformers would add ~40 s, so only torch.nn is read.
SOURCES: tuple[Source, ...] = (
    Source("stdlib", "", "", "PSF-2.0"),
    Source("click", "click", "click", "BSD-3-Clause"),
    Source("jinja2", "jinja2", "jinja2", "BSD-3-Clause"),
    Source("packaging", "packaging", "packaging", "Apache-2.0 OR BSD-2-Clause"),
    Source("fsspec", "fsspec", "fsspec", "BSD-3-Clause"),
    Source("huggingface_hub", "huggingface_hub", "huggingface_hub", "Apache-2.0"),
    Source("sentence-transformers", "sentence_transformers", "sentence-transformers", "Apache-2.0"),
    Source("accelerate", "accelerate", "accelerate", "Apache-2.0"),
    Source("networkx", "networkx", "networkx", "BSD-3-Clause"),
    Source("numpy", "numpy", "numpy", "BSD-3-Clause"),
    Source("torch", "torch/nn", "torch", "BSD-3-Clause"),
)

# The environment the committed file was mined in. Other versions give different docstrings, so the
# script refuses to overwrite the dataset from another environment unless told to (a new version).
# zlib only affects the compressed bytes, not the pairs or BUILTIN_SHA256.
MINED_WITH: dict[str, str] = {
    "python": "3.11.7",
    "zlib": "1.2.13",
    "click": "8.5.1",
    "jinja2": "3.1.6",
    "packaging": "26.4",
    "fsspec": "2026.9.0",
    "huggingface_hub": "2.4.0",
    "sentence-transformers": "6.2.0",
    "accelerate": "1.15.0",
    "networkx": "3.6.1",
    "numpy": "2.4.6",
    "torch": "2.13.0+cpu",
}

SKIP_DIRS = frozenset(
    {
        "test", "tests", "testing", "_testing", "idle_test", "site-packages", "dist-packages", "__pycache__",
        "turtledemo", "_bundled", "encodings", "pydoc_data", "_vendor", "vendor", "_vendored", "vendored",
        "benchmarks", "lib2to3", "f2py",
    }
)
# Big files whose strings are not docstrings (numpy attaches its C functions' docs at import time).
SKIP_FILES = frozenset({"_add_newdocs.py", "_add_newdocs_scalars.py"})
HELD_OUT_FRACTION = 0.05
HELD_OUT_MIN = 500
MAX_POSITIVE_CHARS = 1500
MAX_DOCSTRING_CHARS = 8000


class Pair(NamedTuple):
    """A mined pair and the source label it came from."""

    anchor: str
    positive: str
    source: str


@dataclass
class SourceStats:
    """What mining one source saw: docstrings read, and why the ones that gave no pair were dropped."""

    docstrings: int = 0
    no_body: int = 0
    junk: int = 0
    duplicates: int = 0
    kept: int = 0


@dataclass
class MineResult:
    """The pool in file order (sources in SOURCES order, files sorted) and per-source counts."""

    pairs: list[Pair] = field(default_factory=list)
    stats: dict[str, SourceStats] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------
# Environment


def installed_versions() -> dict[str, str]:
    """The versions this environment would mine from, keyed like MINED_WITH ("?" for a missing package)."""
    found = {"python": sys.version.split()[0], "zlib": zlib.ZLIB_RUNTIME_VERSION}
    for src in SOURCES:
        if src.dist:
            try:
                found[src.label] = importlib.metadata.version(src.dist)
            except importlib.metadata.PackageNotFoundError:
                found[src.label] = "?"
    return found


def source_roots() -> list[tuple[str, Path]]:
    """(label, directory) for every source; a missing one is an error, since it would change the set."""
    roots: list[tuple[str, Path]] = []
    for src in SOURCES:
        if not src.import_path:
            roots.append((src.label, Path(sysconfig.get_paths()["stdlib"])))
            continue
        top, *sub = src.import_path.split("/")
        spec = importlib.util.find_spec(top)  # locates without importing
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"cannot find package {top!r} (source {src.label}); install it first")
        base = Path(next(iter(spec.submodule_search_locations))).joinpath(*sub)
        if not base.is_dir():
            raise SystemExit(f"{base} is not a directory (source {src.label})")
        roots.append((src.label, base))
    return roots


def metadata_licence(dist: str) -> str:
    """The licence a distribution declares (License-Expression, else License, else classifiers)."""
    try:
        meta = importlib.metadata.metadata(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"
    expression = meta.get("License-Expression") or (meta.get("License") or "").strip()
    if expression and "\n" not in expression:
        return expression
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return "; ".join(classifiers) or "?"


# ----------------------------------------------------------------------------------------------------
# Mining


def python_files(root: Path) -> Iterator[Path]:
    """Source files under root in sorted order, skipping tests, vendored code and other packages."""
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py") and not name.startswith(("test_", "conftest")) and name not in SKIP_FILES:
                yield Path(current, name)


def file_pairs(path: Path, stats: SourceStats) -> list[tuple[str, str]]:
    """Candidate pairs of one file in source order (not yet deduplicated), counting what was dropped."""
    try:
        source = path.read_bytes()
    except OSError:
        return []
    if b'"""' not in source and b"'''" not in source:
        return []  # almost every docstring is triple-quoted; skipping the parse saves time
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    found: list[tuple[str, str]] = []
    for doc in docstrings(tree.body):
        stats.docstrings += 1
        pair = docstring_pair(doc)
        if pair is None:
            stats.junk += 1
        elif not pair[1]:
            stats.no_body += 1
        else:
            found.append(pair)
    return found


def mine(roots: list[tuple[str, Path]]) -> MineResult:
    """Mine every root in order and drop any pair whose anchor or positive was already seen in either role."""
    result = MineResult()
    seen: set[str] = set()  # one set for both roles, so no text appears twice anywhere
    for label, root in roots:
        stats = result.stats.setdefault(label, SourceStats())
        for path in python_files(root):
            for anchor, positive in file_pairs(path, stats):
                ka, kp = dedupe_key(anchor), dedupe_key(positive)
                if ka in seen or kp in seen or ka == kp:
                    stats.duplicates += 1
                    continue
                seen.update((ka, kp))
                result.pairs.append(Pair(anchor, positive, label))
                stats.kept += 1
    return result


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def docstrings(body: list[ast.stmt]) -> Iterator[str]:
    """Docstrings of a module/class/function body and of every definition nested in it."""
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        yield first.value.value
    yield from _nested(body)


def _nested(body: list[ast.stmt]) -> Iterator[str]:
    # Only statement lists can hold definitions; skipping expressions is much faster than ast.walk.
    for stmt in body:
        if isinstance(stmt, _DEFS):
            yield from docstrings(stmt.body)
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


def docstring_pair(doc: str) -> tuple[str, str] | None:
    """(summary sentence, cleaned rest) for a usable docstring; None if it is junk; an empty rest if none."""
    text = inspect.cleandoc(doc[:MAX_DOCSTRING_CHARS])
    head, rest = _split_first_paragraph(text)
    first_para = " ".join(head.split())
    parts = _SENTENCE_END.split(first_para, maxsplit=1)
    anchor = inline(parts[0])
    if not good_anchor(anchor):
        return None
    tail = parts[1] if len(parts) > 1 else ""
    positive = inline(strip_blocks(tail + "\n\n" + rest))
    if len(positive.split()) < 8:
        return (anchor, "")
    if len(positive) > MAX_POSITIVE_CHARS:
        cut = positive.rfind(" ", 0, MAX_POSITIVE_CHARS)
        positive = positive[: cut if cut > 0 else MAX_POSITIVE_CHARS]
    if not englishish(positive):
        return None
    return anchor, positive


def _split_first_paragraph(text: str) -> tuple[str, str]:
    parts = re.split(r"\n[ \t]*\n", text.strip(), maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def good_anchor(anchor: str) -> bool:
    """A summary sentence of 4-60 words that is prose, not a signature or a copyright line."""
    words = anchor.split()
    if not 4 <= len(words) <= 60 or not anchor[0].isalnum() or anchor.endswith((":", ",", ";")):
        return False
    if _SIGNATURE.match(anchor) or "copyright" in anchor.lower():
        return False
    return englishish(anchor)


def englishish(text: str) -> bool:
    """Mostly ASCII letters and real words: rejects code, tables, symbol art and other languages."""
    dense = len(text) - text.count(" ")
    if dense == 0:
        return False
    if len(text) - len(text.encode("ascii", "ignore")) > 0.03 * len(text):
        return False
    if len(_NOT_LETTER.sub("", text)) < 0.7 * dense:
        return False
    return len(_WORD.findall(text)) >= 0.6 * len(text.split())


def inline(text: str) -> str:
    """Remove reST inline markup and collapse whitespace."""
    text = _ROLE.sub(r"\1", text)
    text = text.replace("``", "").replace("`", "")
    return " ".join(text.split())


def strip_blocks(text: str) -> str:
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


def dedupe_key(text: str) -> str:
    """Texts equal up to case and whitespace count as the same text."""
    return " ".join(text.lower().split())


# ----------------------------------------------------------------------------------------------------
# Splitting and writing


def held_out_count(n: int) -> int:
    """How many of n pairs the test split holds: 5 %, but at least 500 (at most half)."""
    return max(round(n * HELD_OUT_FRACTION), min(HELD_OUT_MIN, n // 2))


def stable_hash(text: str) -> bytes:
    """A hash that is the same on every platform and Python (unlike hash())."""
    return hashlib.blake2b(text.lower().encode("utf-8"), digest_size=8).digest()


def split_pairs(pairs: list[Pair]) -> tuple[list[Pair], list[Pair]]:
    """(train, test), each in pool order; test holds the pairs whose anchors hash lowest."""
    # The index breaks ties, so the split never depends on sort stability or input order of equal hashes.
    ranked = sorted(range(len(pairs)), key=lambda i: (stable_hash(pairs[i].anchor), i))
    test_ids = set(ranked[: held_out_count(len(pairs))])
    train = [p for i, p in enumerate(pairs) if i not in test_ids]
    test = [p for i, p in enumerate(pairs) if i in test_ids]
    return train, test


def encode(train: list[Pair], test: list[Pair]) -> bytes:
    """The JSON-lines bytes: every train row, then every test row, keys in a fixed order."""
    lines = [
        json.dumps({"split": split, "anchor": p.anchor, "positive": p.positive, "source": p.source},
                   ensure_ascii=False, separators=(", ", ": "))
        for split, rows in (("train", train), ("test", test))
        for p in rows
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def compress(raw: bytes) -> bytes:
    """Gzip with no file name and mtime 0, so equal input gives equal bytes (for a given zlib)."""
    # GzipFile rather than gzip.compress: the latter lets zlib pick the header's OS byte in Python >= 3.11.
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as fh:
        fh.write(raw)
    return buf.getvalue()


def manifest(train: list[Pair], test: list[Pair], result: MineResult, raw: bytes, packed: bytes,
             versions: dict[str, str]) -> str:
    """The text of BUILTIN_PAIRS.md for this mining run."""
    n_train, n_test = Counter(p.source for p in train), Counter(p.source for p in test)
    rows = []
    for src in SOURCES:
        s = result.stats.get(src.label, SourceStats())
        what = "standard library" if not src.dist else src.import_path.replace("/", ".")
        version = versions["python"] if not src.dist else versions.get(src.label, "?")
        rows.append(f"| {src.label} | {what} | {version} | {src.licence} | {s.docstrings:,} | "
                    f"{n_train[src.label]:,} | {n_test[src.label]:,} |")
    total = sum(s.docstrings for s in result.stats.values())
    rows.append(f"| **all** | | | | {total:,} | {len(train):,} | {len(test):,} |")
    drops = [sum(getattr(s, k) for s in result.stats.values()) for k in ("no_body", "junk", "duplicates")]
    env = ", ".join(f"{k} {v}" for k, v in versions.items())
    table = "\n".join(rows)
    return f"""# Builtin pairs, {VERSION}

<!-- Written by scripts/mine_builtin_pairs.py; edit the script, not this file. -->

The offline default training data of st-recipe (`--data builtin`, `load_pairs("builtin")`): {len(train) + len(test):,}
English (anchor, positive) pairs taken from the docstrings of the Python standard library and of packages
st-recipe depends on. The anchor is a docstring's summary sentence; the positive is the rest of the same
docstring. Real, human-written technical prose, no templates, and no text occurs twice in the set.

The pairs are fixed: they ship with st-recipe in `{DATA_NAME}` and never depend on what is installed.
A change to the pairs is a new version (a new file and new `BUILTIN_VERSION`/`BUILTIN_SHA256` in
`st_recipe/data/builtin.py`); `{VERSION}` never changes.

## File

`{DATA_NAME}`: gzip (written with mtime 0 and no file name) of UTF-8 JSON lines, one pair per line:

```json
{{"split": "train", "anchor": "...", "positive": "...", "source": "stdlib"}}
```

All `train` rows come first, then all `test` rows, each in mining order (sources in the order below, files
sorted by path). `load_pairs` shuffles with its `seed`.

| | |
|---|---|
| version | {VERSION} |
| pairs | {len(train):,} train + {len(test):,} test = {len(train) + len(test):,} |
| sha256 of the decompressed JSON lines (`BUILTIN_SHA256`, checked on load) | `{hashlib.sha256(raw).hexdigest()}` |
| sha256 of the .gz file (depends on the zlib version too) | `{hashlib.sha256(packed).hexdigest()}` |
| size | {len(packed):,} bytes compressed, {len(raw):,} decompressed |

The `test` split is held out: the {HELD_OUT_FRACTION:.0%} of pairs (at least {HELD_OUT_MIN}) whose anchors have the lowest
BLAKE2b-64 hash of their lower-cased text. Train and test share no text. `st-recipe eval`'s offline tasks
`builtin:sts` and `builtin:retrieval` are built from the test split.

## Sources

| source | code read | version | licence | docstrings read | train pairs | test pairs |
|---|---|---|---|---:|---:|---:|
{table}

Each text is quoted from its project and stays under that project's licence (above, from each
distribution's metadata and licence files in site-packages). Notes: Jinja2's metadata declares only
"BSD License"; its LICENSE.txt is the 3-clause BSD licence. Accelerate's metadata says "Apache"; its
LICENSE is Apache-2.0. Only `torch.nn` is read from torch; that is PyTorch's own code under its
BSD-3-Clause-style LICENSE, while the torch wheel's License-Expression (Apache-2.0 AND Apache-2.0 WITH
LLVM-exception AND BSD-2-Clause AND BSD-3-Clause AND BSL-1.0 AND MIT) also covers bundled third-party code.

## How it was mined

`scripts/mine_builtin_pairs.py` (in the repository, not in the package) parses every `.py` file of each
source with `ast` (skipping test, vendored and benchmark folders and numpy's `_add_newdocs*.py`) and reads
the docstrings of modules, classes and functions. For each docstring:

* the anchor is the first sentence of its first paragraph, with reST roles and backticks removed; it must
  have 4 to 60 words, start with a letter or digit, not end in `:`, `,` or `;`, not look like a call
  signature or a copyright line, and be mostly ASCII letters and words;
* the positive is the rest of the docstring without doctests, `::` literal blocks, directives (and the
  bodies of code/math directives), section underlines and "See Also", "References" and "Examples"
  sections, whitespace collapsed; it needs at least 8 words, is cut at the last space before
  {MAX_POSITIVE_CHARS} characters and passes the same mostly-English check;
* a pair whose anchor or positive equals (ignoring case and whitespace) any text already taken, in either
  role, is dropped, in mining order.

Of {total:,} docstrings read, {drops[0]:,} had no usable body, {drops[1]:,} were rejected as junk and
{drops[2]:,} repeated a text already taken.

## Regenerating

Mining is done once; the output depends on the exact Python version (its standard library) and package
versions. This file was written in: {env}. In such an environment

```
python scripts/mine_builtin_pairs.py          # rewrite {DATA_NAME} and this file
python scripts/mine_builtin_pairs.py --check  # verify the committed files, byte for byte
```

reproduces both files byte for byte. Elsewhere the script refuses to overwrite them; a new set from other
versions is a new dataset version.
"""


# ----------------------------------------------------------------------------------------------------
# Command line


def build(versions: dict[str, str]) -> tuple[bytes, str, list[Pair], list[Pair], MineResult]:
    """Mine every source and return (compressed file, manifest text, train, test, mining result)."""
    result = mine(source_roots())
    train, test = split_pairs(result.pairs)
    raw = encode(train, test)
    packed = compress(raw)
    return packed, manifest(train, test, result, raw, packed, versions), train, test, result


def summary(train: list[Pair], test: list[Pair], packed: bytes, versions: dict[str, str]) -> str:
    """Pairs per split and per source, and the hashes, as printed after a run."""
    raw = gzip.decompress(packed)
    n_train, n_test = Counter(p.source for p in train), Counter(p.source for p in test)
    lines = [f"{DATA_NAME}: {len(train)} train + {len(test)} test = {len(train) + len(test)} pairs"]
    for src in SOURCES:
        version = versions["python"] if not src.dist else versions.get(src.label, "?")
        meta = "PSF-2.0 (stdlib)" if not src.dist else metadata_licence(src.dist)
        lines.append(f"  {src.label:<22} {version:<12} train {n_train[src.label]:>5}  test {n_test[src.label]:>4}"
                     f"  licence {src.licence} (metadata: {meta})")
    lines.append(f"sha256 (decompressed, BUILTIN_SHA256): {hashlib.sha256(raw).hexdigest()}")
    lines.append(f"sha256 (.gz): {hashlib.sha256(packed).hexdigest()}  size {len(packed)} bytes")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Mine, then write (or with --check compare) the dataset and its manifest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="where the two files go")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out-dir; write nothing")
    parser.add_argument("--any-versions", action="store_true",
                        help=f"write even if the environment differs from the one {VERSION} was mined in")
    args = parser.parse_args(argv)

    versions = installed_versions()
    differ = {k: (v, versions.get(k, "?")) for k, v in MINED_WITH.items() if versions.get(k) != v}
    if differ:
        text = ", ".join(f"{k} {want} (here {have})" for k, (want, have) in differ.items())
        print(f"warning: {VERSION} was mined with {text}; the output will differ", file=sys.stderr)
        if not args.check and not args.any_versions and args.out_dir.resolve() == DEFAULT_OUT_DIR:
            print("refusing to overwrite the shipped dataset; pass --any-versions or --out-dir", file=sys.stderr)
            return 2

    packed, text, train, test, _ = build(versions)
    print(summary(train, test, packed, versions))
    targets = {args.out_dir / DATA_NAME: packed, args.out_dir / MANIFEST_NAME: text.encode("utf-8")}
    if args.check:
        stale = [str(p) for p, content in targets.items() if not p.is_file() or p.read_bytes() != content]
        print("differs: " + ", ".join(stale) if stale else "the committed files match byte for byte")
        return 1 if stale else 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path, content in targets.items():
        path.write_bytes(content)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
