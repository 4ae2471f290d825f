"""What every command shares: one-line input checks made before heavy imports, library quieting, display."""

from __future__ import annotations

import json
from typing import Any

import click

from st_recipe._text import format_table, model_slug
from st_recipe.errors import StRecipeError

__all__ = ["args_text", "check_batch_size", "check_min", "check_model", "click",
           "display", "format_table", "model_slug", "quiet_libraries"]


def check_min(value: int | None, flag: str, minimum: int, why: str = "") -> None:
    """Raise unless an optional integer option is at least ``minimum``."""
    if value is not None and value < minimum:
        raise StRecipeError(f"{flag} must be an integer >= {minimum}{why}, not {value}")


def check_batch_size(value: int | None, flag: str = "--batch-size") -> None:
    """In-batch negatives need at least two pairs per batch."""
    check_min(value, flag, 2, " (in-batch negatives need at least two pairs per batch)")


def check_model(model: str, what: str = "model", instead: str = "pass --model DIR") -> Any:
    """A base-model argument, classified and (from the Hub) reachable or cached: st_recipe.models.args.check_model."""
    from st_recipe.models.args import check_model as check

    return check(model, what=what, instead=instead)


def quiet_libraries(*loud: str) -> None:
    """Silence library chatter (progress bars, load reports) so a command's own lines stay readable.

    ``loud`` names further libraries to import and set to errors only: they reset their loggers when
    first imported, so quieting them before that import would not last.
    """
    import importlib
    import logging
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    for name in loud:
        try:
            module = importlib.import_module(name)
        except ImportError:  # pragma: no cover - the command itself reports a missing extra
            continue
        if hasattr(module, "disable_progress_bars"):
            module.disable_progress_bars()
        logging.getLogger(name).setLevel(logging.ERROR)


def display(model: str) -> str:
    """A model's label for a command's own lines (random weights say so)."""
    from st_recipe.models.args import parse_model_spec

    return parse_model_spec(model).display


def args_text(args: dict[str, Any]) -> str:
    """``k=v, ...`` for a method's arguments (``-`` when it has none)."""
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items()) or "-"
