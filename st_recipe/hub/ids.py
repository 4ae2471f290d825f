"""The one owner of "is this a Hugging Face Hub repo id?": model and dataset ids (``ORG/NAME``, with an ``@revision``
for models or ``:config:split`` for datasets) and the stricter rules for a repo st-recipe creates."""

from __future__ import annotations

import re
from typing import Any

from st_recipe.errors import StRecipeError

# ORG/NAME: each part starts with a letter or digit, then letters, digits, '_', '.', '-' (the Hub's own characters).
REPO_ID = r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*"
_REPO_ID = re.compile(REPO_ID)
# org/name, org/name:config, org/name:config:split or org/name::split (the default config).
_DATASET_SPEC = re.compile(rf"(?P<repo>{REPO_ID})(?::(?P<config>[\w.-]*)(?::(?P<split>[\w.%\[\]:+-]+))?)?")
_REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
# First path segments the Hub routes itself (huggingface.co/datasets/x is a dataset), never an owner's name.
_RESERVED_OWNERS = frozenset({"datasets", "spaces", "models", "api", "docs", "new", "settings", "organizations"})


def is_repo_id(text: Any) -> bool:
    """True for ``ORG/NAME`` (a Hub model or dataset id), never for a relative or home path (``./x/y``, ``~/x``)."""
    return isinstance(text, str) and _REPO_ID.fullmatch(text) is not None


def split_revision(text: str) -> tuple[str, str | None]:
    """``ORG/NAME@REV`` as (``ORG/NAME``, ``REV``); (text, None) without ``@``."""
    repo, at, revision = text.partition("@")
    return repo, (revision if at else None)


def parse_dataset_spec(text: Any) -> dict[str, str | None] | None:
    """``{"repo", "config", "split"}`` of a Hub dataset spec (``ORG/NAME[:CONFIG[:SPLIT]]``), or None if it is not one."""
    match = _DATASET_SPEC.fullmatch(text) if isinstance(text, str) else None
    return match.groupdict() if match else None


def validate_repo_id(repo_id: Any) -> str:
    """``ORG/NAME`` that the Hub accepts for a new repo (its character, length and reserved-name rules), or a
    one-line error."""
    if repo_id is not None and not isinstance(repo_id, str):
        raise StRecipeError(f"repo id must be text like ORG/NAME, not {type(repo_id).__name__}")
    if not repo_id or not repo_id.strip():
        raise StRecipeError("repo id is empty: pass --repo ORG/NAME")
    problem = _repo_id_problem(repo_id.split("/"))
    if problem:
        raise StRecipeError(f"invalid repo id {repo_id!r}: {problem}")
    return repo_id


def _repo_id_problem(parts: list[str]) -> str | None:
    """What is wrong with the parts of a repo id to create, or None."""
    if len(parts) != 2:
        return "it must be exactly ORG/NAME (one '/')"
    if not all(parts):
        return "the owner and the name must both be non-empty"
    # fullmatch: a "$" anchor would let a trailing newline through.
    if not all(_REPO_PART.fullmatch(p) for p in parts):
        return ("each part may use only ASCII letters, digits, '-', '_' and '.', "
                "and must start and end with a letter or digit")
    if any("--" in p or ".." in p for p in parts):
        return "'--' and '..' are not allowed"
    if any(len(p) > 96 for p in parts):
        return "each part may be at most 96 characters"
    if parts[1].lower().endswith(".git"):
        return "the name cannot end in '.git'"
    if parts[0].lower() in _RESERVED_OWNERS:
        return f"{parts[0]!r} is a Hub address, not an owner (did you mean ORG/NAME?)"
    return None
