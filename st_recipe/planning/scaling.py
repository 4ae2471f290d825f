"""The paper's algorithm on your own sweep: per-method loss-vs-budget laws, the frontier, crossovers.

For each method keep the best (lowest) loss per budget, fit ``log L = a + b log C`` (a straight line on
log-log axes, as in the paper's figure), take the lower envelope of the fitted lines as the compute-optimal
frontier, and locate the budgets where the optimal method changes. The optimal model size per budget is
fitted the same way (``log N* = c + d log C``) so a planner can extrapolate to larger budgets.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from st_recipe.errors import StRecipeError


@dataclass(frozen=True)
class Point:
    """One finished sweep cell."""

    method: str
    model: str
    budget: float
    loss: float
    n_params: int
    pairs: int
    config: str = ""


@dataclass
class LineFit:
    """``log10 y = intercept + slope · log10 x`` with its goodness of fit."""

    intercept: float
    slope: float
    r2: float
    residuals: list[float]
    points: list[tuple[float, float]]

    def __call__(self, x: float) -> float:
        """The fitted y at x."""
        return 10 ** (self.intercept + self.slope * math.log10(x))


def fit_loglog(xs: list[float], ys: list[float]) -> LineFit:
    """Least-squares line through (log10 x, log10 y); R² and residuals in log10 units."""
    if len(xs) < 2 or len(set(xs)) < 2:
        raise StRecipeError("a log-log fit needs points at two or more distinct budgets")
    if any(x <= 0 for x in xs) or any(y <= 0 for y in ys):
        raise StRecipeError("a log-log fit needs positive budgets and losses")
    lx = [math.log10(x) for x in xs]
    ly = [math.log10(y) for y in ys]
    n = len(lx)
    mx, my = sum(lx) / n, sum(ly) / n
    sxx = sum((x - mx) ** 2 for x in lx)
    slope = sum((x - mx) * (y - my) for x, y in zip(lx, ly)) / sxx
    intercept = my - slope * mx
    residuals = [y - (intercept + slope * x) for x, y in zip(lx, ly)]
    ss_tot = sum((y - my) ** 2 for y in ly)
    ss_res = sum(r * r for r in residuals)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return LineFit(intercept, slope, r2, residuals, list(zip(xs, ys)))


@dataclass
class FittedLaw:
    """Per-method laws, the frontier and the model-size trend: what ``plan(fitted=...)`` consults."""

    methods: dict[str, LineFit]
    model_size: dict[str, LineFit | None]
    source: str = ""
    catalogue_sizes: dict[str, int] = field(default_factory=dict)
    best_sizes: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    def loss(self, method: str, budget: float) -> float:
        """Predicted best loss of ``method`` at ``budget``."""
        return self.methods[method](budget)

    def method_for(self, budget: float) -> str:
        """The method on the frontier at ``budget``."""
        return min(self.methods, key=lambda m: self.loss(m, budget))

    def model_for(self, budget: float, method: str, candidates: list[str]) -> str:
        """The candidate whose size is closest (in log) to the fitted optimal size at ``budget``."""
        trend = self.model_size.get(method)
        from st_recipe.models.catalog import CATALOG

        sizes = {c: CATALOG[c].n_params if c in CATALOG else self.catalogue_sizes.get(c, 0) for c in candidates}
        sizes = {c: n for c, n in sizes.items() if n > 0}
        if not sizes:
            return candidates[0]
        if trend is not None:
            target_n = trend(budget)
        elif self.best_sizes.get(method):
            # One optimal size in the sweep: keep it, taken at the sweep budget nearest to this one.
            nearest = min(self.best_sizes[method], key=lambda bn: abs(math.log10(bn[0]) - math.log10(budget)))
            target_n = nearest[1]
        else:
            target_n = min(sizes.values())
        return min(sizes, key=lambda c: abs(math.log10(sizes[c]) - math.log10(target_n)))

    def crossovers(self) -> list[dict[str, Any]]:
        """Budgets where the frontier switches method, between the fitted ranges' extremes ×/÷ 100."""
        names = sorted(self.methods)
        budgets = [b for f in self.methods.values() for b, _ in f.points]
        lo, hi = math.log10(min(budgets)) - 2, math.log10(max(budgets)) + 2
        out = []
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                fa, fb = self.methods[a], self.methods[b]
                if fa.slope == fb.slope:
                    continue
                lc = (fb.intercept - fa.intercept) / (fa.slope - fb.slope)
                if not lo <= lc <= hi:
                    continue
                c = 10**lc
                # Only switches that happen on the envelope (no third method is better there) count.
                on_frontier = self.method_for(c * 0.999) in (a, b) and self.method_for(c * 1.001) in (a, b)
                if on_frontier and self.method_for(c * 0.999) != self.method_for(c * 1.001):
                    out.append({"budget": c, "below": self.method_for(c * 0.999), "above": self.method_for(c * 1.001)})
        return sorted(out, key=lambda d: d["budget"])

    def describe(self) -> str:
        """One line for provenance notes."""
        return f"fitted log-log laws from {self.source or 'a sweep'} ({', '.join(sorted(self.methods))})"

    def to_dict(self) -> dict[str, Any]:
        """YAML/JSON-ready form (what ``st-recipe fit`` writes)."""
        return {
            "provenance": {"source": "fitted", "note": self.describe()},
            "source": self.source,
            "methods": {m: _line_dict(f) for m, f in self.methods.items()},
            "model_size": {m: (_line_dict(f) if f else None) for m, f in self.model_size.items()},
            "crossovers": self.crossovers(),
            "catalogue_sizes": self.catalogue_sizes,
            "best_sizes": {m: [list(x) for x in v] for m, v in self.best_sizes.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FittedLaw":
        """Inverse of :meth:`to_dict`."""
        try:
            methods = {m: _line_from(d) for m, d in data["methods"].items()}
            sizes = {m: (_line_from(d) if d else None) for m, d in (data.get("model_size") or {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise StRecipeError(f"not a fitted-law file: {exc}") from None
        if not methods:
            raise StRecipeError("the fitted-law file has no methods")
        best = {m: [(float(b), int(n)) for b, n in v] for m, v in (data.get("best_sizes") or {}).items()}
        return cls(methods=methods, model_size=sizes, source=str(data.get("source", "")),
                   catalogue_sizes=dict(data.get("catalogue_sizes") or {}), best_sizes=best)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "FittedLaw":
        """Read a file written by ``st-recipe fit``."""
        import yaml

        p = Path(path)
        if not p.is_file():
            raise StRecipeError(f"fitted-law file {str(p)!r} does not exist")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise StRecipeError(f"fitted-law file {str(p)!r} is malformed: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise StRecipeError(f"fitted-law file {str(p)!r} is not a mapping")
        return cls.from_dict(data.get("fitted", data))


def _line_dict(f: LineFit) -> dict[str, Any]:
    return {"intercept": f.intercept, "slope": f.slope, "r2": f.r2, "residuals": f.residuals,
            "points": [list(p) for p in f.points]}


def _line_from(d: dict[str, Any]) -> LineFit:
    return LineFit(float(d["intercept"]), float(d["slope"]), float(d.get("r2", float("nan"))),
                   [float(x) for x in d.get("residuals", [])], [tuple(p) for p in d.get("points", [])])


def best_per_budget(points: Iterable[Point]) -> dict[str, list[Point]]:
    """For each method, the lowest-loss point at each budget (over model sizes and configurations)."""
    best: dict[tuple[str, float], Point] = {}
    for p in points:
        key = (p.method, p.budget)
        if key not in best or p.loss < best[key].loss:
            best[key] = p
    out: dict[str, list[Point]] = {}
    for (method, _), p in sorted(best.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        out.setdefault(method, []).append(p)
    return out


def fit_points(points: list[Point], source: str = "") -> FittedLaw:
    """Fit per-method laws and model-size trends from sweep points."""
    if not points:
        raise StRecipeError("no finished sweep cells to fit")
    per_method = best_per_budget(points)
    methods: dict[str, LineFit] = {}
    sizes: dict[str, LineFit | None] = {}
    problems = []
    for method, pts in per_method.items():
        if len({p.budget for p in pts}) < 2:
            problems.append(f"{method} has points at only {len(pts)} budget")
            continue
        methods[method] = fit_loglog([p.budget for p in pts], [p.loss for p in pts])
        ns = [p.n_params for p in pts]
        sizes[method] = fit_loglog([p.budget for p in pts], ns) if len(set(ns)) > 1 else None
    if not methods:
        raise StRecipeError(f"too few points for a fit: {'; '.join(problems)}; a fit needs at least 2 budgets per method")
    catalogue = {p.model: p.n_params for p in points}
    best_sizes = {m: [(p.budget, p.n_params) for p in pts] for m, pts in per_method.items() if m in methods}
    return FittedLaw(methods=methods, model_size=sizes, source=source, catalogue_sizes=catalogue, best_sizes=best_sizes)


# Image types the frontier plot can be written as (matplotlib picks the format from the suffix).
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def plot_frontier(law: FittedLaw, points: list[Point], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Points per method, fitted lines, and the frontier in black (log-log), like the paper's Figure 1."""
    if Path(path).suffix.lower() not in PLOT_SUFFIXES:
        raise StRecipeError(f"plot file {str(path)!r} must end in {', '.join(PLOT_SUFFIXES)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    budgets = [p.budget for p in points]
    lo, hi = min(budgets) / 1.5, max(budgets) * 1.5
    grid = [10 ** (math.log10(lo) + i * (math.log10(hi) - math.log10(lo)) / 100) for i in range(101)]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, method in enumerate(sorted({p.method for p in points})):
        color = colors[i % len(colors)]
        pts = [p for p in points if p.method == method]
        ax.scatter([p.budget for p in pts], [p.loss for p in pts], s=18, alpha=0.45, color=color)
        if method in law.methods:
            best = list(law.methods[method].points)
            ax.scatter([budget for budget, _ in best], [loss for _, loss in best], s=40, color=color, edgecolor="black", linewidth=0.5)
            ax.plot(grid, [law.loss(method, c) for c in grid], color=color, linewidth=1.5,
                    label=f"{method}: slope {law.methods[method].slope:.3f}, R² {law.methods[method].r2:.2f}")
    ax.plot(grid, [min(law.loss(m, c) for m in law.methods) for c in grid], color="black", linewidth=2.5,
            alpha=0.8, label="frontier", zorder=0)
    for cross in law.crossovers():
        if lo <= cross["budget"] <= hi:
            ax.axvline(cross["budget"], color="gray", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training budget (FLOP)")
    ax.set_ylabel("held-out contrastive loss")
    ax.set_title(title or "Compute-optimal frontier")
    ax.legend(fontsize=8)
    from st_recipe._io import save_figure

    return save_figure(fig, path)
