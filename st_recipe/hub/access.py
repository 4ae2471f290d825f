"""Is the Hugging Face Hub usable right now, and is what a command needs already in the local cache?

Without Hub access the libraries retry each download for minutes ("Retrying in 8s") before failing, so
commands ask here first and fail in one line that says how to work from a local folder instead. The probe
is one short request to ``HF_ENDPOINT`` (default https://huggingface.co), made at most once per process;
``HF_HUB_OFFLINE=1`` (or ``TRANSFORMERS_OFFLINE=1``) skips it. Files already in the local cache keep
working offline: nothing is refused that the cache can serve.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from st_recipe.errors import StRecipeError

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "ON", "YES", "TRUE"}


def offline_requested() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is set to a true value (as huggingface_hub reads them)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in _TRUE


def endpoint() -> str:
    """The Hub URL the libraries would talk to."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


@functools.cache
def _probe(url: str, timeout: float) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer (even 404 or 401) means the server is there
    except (OSError, ValueError):  # URLError, timeouts, refused connections, a malformed HF_ENDPOINT
        return False


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the Hub endpoint answers at all (probed once per process and endpoint)."""
    return _probe(endpoint(), timeout)


def unavailable_reason() -> str | None:
    """Why the Hub cannot be used now ("HF_HUB_OFFLINE=1 is set", "... is unreachable"), or None if it can."""
    if offline_requested():
        return "HF_HUB_OFFLINE=1 is set"
    if not hub_reachable():
        return f"the Hub ({endpoint()}) is unreachable"
    return None


def model_in_cache(repo_id: str, revision: str | None = None) -> bool:
    """Whether the local Hugging Face cache holds ``repo_id``'s config.json (so loading can work offline)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except (ValueError, OSError):  # an id the client rejects cannot be in the cache either
        return False
    return isinstance(found, str)


def dataset_in_cache(repo_id: str) -> bool:
    """Whether either Hugging Face cache has anything for dataset ``repo_id`` (then ``datasets`` gets to try)."""
    from huggingface_hub import constants

    org, _, name = repo_id.partition("/")
    hub_copy = Path(constants.HF_HUB_CACHE) / f"datasets--{org}--{name}"
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    datasets_root = os.environ.get("HF_DATASETS_CACHE") or os.path.join(home, "datasets")
    datasets_copy = Path(os.path.expanduser(datasets_root)) / f"{org}___{name}"
    return hub_copy.is_dir() or datasets_copy.is_dir()


def _cache_only() -> None:
    # The Hub is unreachable but the cache has the files: without offline mode every load would first
    # retry the network for minutes. huggingface_hub reads the variable once, at import.
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        pass


def require_model(repo_id: str, *, revision: str | None = None, what: str = "model",
                  instead: str = "pass that folder instead") -> None:
    """Raise a one-line error if Hub model ``repo_id`` can be neither downloaded now nor read from the cache."""
    if offline_requested():
        reason = "HF_HUB_OFFLINE=1 is set"
    elif hub_reachable():
        return
    else:
        reason = f"the Hub ({endpoint()}) is unreachable"
    if model_in_cache(repo_id, revision):
        if not offline_requested():
            _cache_only()
        return
    raise StRecipeError(
        f"{what} {repo_id!r} would come from the Hugging Face Hub (it is not a local folder and not in the local "
        f"cache), but {reason}; download it where the Hub is reachable (hf download {repo_id} --local-dir DIR) "
        f"and {instead}"
    )


def require_dataset(repo_id: str) -> None:
    """Raise a one-line error if Hub dataset ``repo_id`` cannot be read now (no Hub and nothing cached)."""
    reason = unavailable_reason()
    if reason is None:
        return
    if dataset_in_cache(repo_id):
        if not offline_requested():
            _cache_only()
        return
    raise StRecipeError(
        f"data {repo_id!r} is a Hugging Face Hub dataset and not in the local cache, but {reason}; "
        "use a local file (.jsonl, .csv, .tsv, .parquet) or 'builtin' instead"
    )


def require_hub(purpose: str, hint: str = "") -> None:
    """Raise a one-line error if the Hub itself is needed for ``purpose`` (e.g. an upload) but unusable."""
    reason = unavailable_reason()
    if reason is not None:
        raise StRecipeError(f"{purpose} needs the Hugging Face Hub, but {reason}" + (f"; {hint}" if hint else ""))
