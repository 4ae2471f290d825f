"""The one exception type st-recipe raises for bad input."""

from __future__ import annotations


class StRecipeError(ValueError):
    """A user-facing error: one line that names the problem (the CLI prints it and exits with 2)."""

    def __init__(self, message: str) -> None:
        # Keep it to one line so the CLI never prints a multi-line wall.
        super().__init__(" ".join(str(message).split()))
