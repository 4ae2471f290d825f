"""Talking to the Hub: repo ids, read-only preflight checks, the one-commit push, and errors as one line.

Every failure of the network or the server becomes one :class:`StRecipeError` line naming the repo and the
HTTP status (or the connection problem), with the token masked should the client have echoed it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.hub.ids import validate_repo_id  # noqa: F401 -- re-exported: publishing validates what it creates
from st_recipe.publishing.staging import GENERATED_PATTERNS, MODEL_PATTERNS

# ----------------------------------------------------------------------------------------- errors


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport-level exception classes of the HTTP stacks huggingface_hub may use."""
    classes: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (("httpx2", "HTTPError"), ("httpx", "HTTPError"), ("requests", "RequestException")):
        try:
            classes.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(classes)


def push_error(exc: BaseException, repo_id: str, token: str | None) -> StRecipeError:
    """One line naming the repo and the HTTP status (or the connection problem); never the token."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError

    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    http = next((e for e in chain if isinstance(e, HfHubHTTPError)), None)
    if http is not None:
        status = getattr(http.response, "status_code", None)
        detail = (http.server_message or str(http)).strip().splitlines()
        hint = {401: "the token was not accepted", 403: f"the token may not write to {repo_id.split('/')[0]!r}",
                404: "not found", 409: "conflict (the branch moved; try again)"}.get(status or 0, "")
        # The server's own words when it gave some (an LFS refusal is not a permissions problem); else a hint.
        reason = detail[0] if http.server_message and detail else hint
        message = f"publishing to {repo_id} failed: HTTP {status}" + (f" ({reason})" if reason else "")
    elif isinstance(exc, _network_errors()):
        message = f"publishing to {repo_id} failed: cannot reach {constants.ENDPOINT} ({type(exc).__name__}: {exc})"
    else:
        message = f"publishing to {repo_id} failed: {type(exc).__name__}: {exc}"
    return StRecipeError(message.replace(token, "***") if token else message)


def _http_errors() -> tuple[type[BaseException], ...]:
    """What a call to the Hub may raise that is the network's or the server's fault, not a bug here."""
    # RuntimeError: a failed LFS upload is re-raised as one, with the HTTP error as its cause.
    return (ValueError, RuntimeError, OSError) + _network_errors()


# ----------------------------------------------------------------------------------------- calls


def preflight(api: Any, repo_id: str, *, private: bool, revision: str | None) -> bool | None:
    """Read-only checks before anything is staged or created; the existing repo's visibility (None if new)."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    branch = revision if revision and revision != "main" else None
    try:
        info = api.model_info(repo_id, revision=branch)
    except RevisionNotFoundError:
        raise StRecipeError(f"{repo_id} has no branch {revision!r}: create it on the Hub first") from None
    except RepositoryNotFoundError:
        if branch:
            raise StRecipeError(f"{repo_id} does not exist yet, so it has no branch {revision!r}: publish to main first") from None
        return None
    except _http_errors() as exc:
        raise push_error(exc, repo_id, api.token) from None
    if private and not info.private:
        raise StRecipeError(f"{repo_id} already exists and is public; --private only applies to a new repo "
                            "(make it private on the Hub first, or publish without --private)")
    return bool(info.private)


def push(api: Any, stage: Path, repo_id: str, *, private: bool, revision: str | None, commit_message: str,
         description: str) -> tuple[Any, str]:
    """create_repo (idempotent) then one upload_folder commit; returns the commit info and the repo URL."""
    try:
        url = str(api.create_repo(repo_id, private=private, exist_ok=True))
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(stage),
            revision=revision,
            commit_message=commit_message,
            commit_description=description,
            # Files st-recipe manages that a previous publish left and this one no longer has (an old shard,
            # a dropped plot) go in the same commit; anything else in the repo is the owner's and stays.
            delete_patterns=list(MODEL_PATTERNS + GENERATED_PATTERNS),
        )
    except _http_errors() as exc:
        raise push_error(exc, repo_id, api.token) from None
    return info, url
