"""Where a recipe value came from: the paper, its formulas, our written rule, our real-model benchmark, the user's
own sweep, or a flag."""

from __future__ import annotations

from dataclasses import dataclass

from st_recipe.errors import StRecipeError

SOURCES = ("paper", "derived", "heuristic", "measured", "fitted", "user")


@dataclass(frozen=True)
class Provenance:
    """Where a recipe value came from, and the rule or citation behind it."""

    source: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise StRecipeError(f"provenance source must be one of {', '.join(SOURCES)}, not {self.source!r}")

    def to_dict(self) -> dict[str, str]:
        """``{"source": ..., "note": ...}`` (note omitted when empty)."""
        return {"source": self.source, **({"note": self.note} if self.note else {})}
