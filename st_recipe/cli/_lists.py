"""Comma-separated flag values (sweep's --budgets, --models, --ranks ...) as checked lists."""

from __future__ import annotations

from st_recipe.errors import StRecipeError


def floats(text: str, what: str) -> list[float]:
    """Comma-separated numbers (budgets are checked as budgets)."""
    from st_recipe.costing.flops import check_budget

    items = names(text, what)
    return [check_budget(t) for t in items] if what == "--budgets" else [number(t, what) for t in items]


def number(text: str, what: str) -> float:
    """One number, or a one-line error naming the flag."""
    try:
        return float(text)
    except ValueError:
        raise StRecipeError(f"{what}: {text!r} is not a number") from None


def ints(text: str, what: str, minimum: int = 1) -> list[int]:
    """Strict integers: '1.5' is an error, not silently 1."""
    out = []
    for item in names(text, what):
        try:
            value = int(item)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise StRecipeError(f"{what}: {item!r} is not an integer >= {minimum}")
        out.append(value)
    return out


def names(text: str, what: str) -> list[str]:
    """Comma-separated non-empty items."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise StRecipeError(f"{what} is empty")
    return items
