"""What must not go up: the access token, and the local paths of the machine a run was made on.

The token comes from the argument, ``HF_TOKEN`` or the huggingface_hub login. It is handed to the client and
nowhere else: no file, card, log line or error message holds it, and a staged file that does is refused.
Records and summaries are published as copies with local paths cut by :func:`st_recipe._text.public`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from st_recipe._text import public
from st_recipe.errors import StRecipeError
from st_recipe.run import RunRecord


def resolve_token(token: str | None) -> str:
    """The argument, else HF_TOKEN or the stored login (huggingface_hub.get_token reads both)."""
    if token:
        return token
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise StRecipeError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a dry run needs none)")
    return found


def token_to_scan_for(token: str | None) -> str | None:
    """The token a dry run must keep out of its folder: the argument, else HF_TOKEN (no login is read)."""
    return token or os.environ.get("HF_TOKEN")


def check_no_secret(stage: Path, files: list[str], token: str | None) -> None:
    """Refuse to upload a staged text file that holds the token (weights are not text and are skipped)."""
    if not token:
        return
    needle = token.encode()
    for rel in files:
        if rel.endswith((".safetensors", ".png")):
            continue
        if needle in (stage / rel).read_bytes():
            raise StRecipeError(f"staged file {rel!r} contains the access token; refusing to upload it")


def public_record(rec: RunRecord) -> RunRecord:
    """The run record with local paths cut (what the card shows)."""
    return RunRecord.from_dict(public(rec.to_dict()))


def published_record(rec: RunRecord, repo_id: str, identity: dict[str, str]) -> dict[str, Any]:
    """The ``st_recipe.json`` that goes up: the record without local paths, the repo and the run it came from."""
    out = public(rec.to_dict())
    out["repo_id"] = repo_id
    out["source_run"] = identity
    return out


def public_summary(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """An eval summary without local paths (None stays None)."""
    return public(summary) if summary else None
