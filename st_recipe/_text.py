"""Small text rules shared by every stage: slugs for names, keeping local paths out of public files, plain tables."""

from __future__ import annotations

import os
import re
from typing import Any

# An absolute POSIX/Windows path (or ~/...) inside free text, at least two components deep.
_LOCAL_PATH_IN_TEXT = re.compile(r"(?<![\w:/.~-])(?:~|[A-Za-z]:)?[/\\](?:[^\s/\\'\",;|()]+[/\\])+[^\s/\\'\",;|()]*")


def slugify(text: str, default: str = "model") -> str:
    """A name safe for folders and Hub/mteb model names: letters, digits and ``_.-`` only."""
    return re.sub(r"[^\w.\-]+", "-", text).strip("-_.") or default


def model_slug(model: str) -> str:
    """A short name for a model argument: the folder or repo name, ``random-`` for random-init specs."""
    name = model.removeprefix("random:")
    name = os.path.basename(os.path.normpath(name)) if os.sep in name else name.split("/")[-1]
    return ("random-" if model.startswith("random:") else "") + slugify(name)


def looks_like_local_path(value: str) -> bool:
    """True for strings that name an absolute path on this machine (POSIX or Windows style)."""
    if len(value) < 2 or "\n" in value:
        return False
    if value.startswith(("/", "~/")) and not value.startswith("//"):
        return len(value) > 1 and any(c.isalnum() for c in value)
    return len(value) > 2 and value[1] == ":" and value[2] in "\\/" and value[0].isalpha()


def cut_path(path: str) -> str:
    """``<local>/<last part>``: enough to recognise the folder, nothing about the machine's layout."""
    last = re.split(r"[/\\]", path.rstrip("/\\"))[-1]
    return f"<local>/{last}" if last else "<local>"


def public_text(text: str) -> str:
    """Text with every absolute local path in it cut down by :func:`cut_path`."""
    return _LOCAL_PATH_IN_TEXT.sub(lambda m: cut_path(m.group(0)), text)


def public(value: Any, replacement: str | None = None) -> Any:
    """A JSON value with local paths removed from every string.

    A string that *is* a local path becomes ``replacement`` when given (a model folder saved for others
    names its Hub id or nothing), else its :func:`cut_path` form; paths inside longer text are cut.
    """
    if isinstance(value, dict):
        return {k: public(v, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [public(v, replacement) for v in value]
    if isinstance(value, str):
        if looks_like_local_path(value):
            return replacement if replacement is not None else cut_path(value)
        return public_text(value) if replacement is None else value
    return value


def format_table(rows: list[tuple[str, ...]], wrap_last: int | None = None) -> str:
    """Left-aligned plain-text table; the first row is the header; the last column may wrap."""
    import textwrap

    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if wrap_last:
        widths[-1] = min(widths[-1], wrap_last)
    lines = []
    for row in rows:
        last = textwrap.wrap(row[-1], wrap_last) if wrap_last and row[-1] else [row[-1]]
        head = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths))
        lines.append(f"{head}  {last[0]}".rstrip() if row[:-1] else last[0])
        pad = " " * (len(head) + 2)
        lines += [pad + extra for extra in last[1:]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
