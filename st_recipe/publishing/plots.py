"""The card's figures: the training loss per step (and the dev score against FLOPs), and the model against a frontier.

Both need matplotlib; without it the card simply has no figure (the frontier keeps its numbers).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from st_recipe._io import save_figure
from st_recipe._text import public_text
from st_recipe.publishing.card import fmt_flops
from st_recipe.publishing.staging import FRONTIER_PLOT
from st_recipe.run import RunRecord


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_loss(losses: list[float], path: Path, dev: list[dict[str, Any]] | None = None) -> bool:
    """The per-step training loss (and, with ``dev`` points, the dev score against training FLOPs) as a PNG.

    False when matplotlib is missing or there is nothing to draw.
    """
    if not losses:
        return False
    plt = _pyplot()
    if plt is None:
        return False
    points = [p for p in dev or [] if isinstance(p.get("score"), (int, float)) and isinstance(p.get("flops"), (int, float))]
    fig, axes = plt.subplots(1, 2 if points else 1, figsize=(11.0 if points else 6.4, 3.6), dpi=110, squeeze=False)
    ax = axes[0][0]
    ax.plot(range(1, len(losses) + 1), losses, color="#1f77b4", linewidth=1.4)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("symmetric InfoNCE loss")
    ax.set_title("Training loss")
    ax.grid(alpha=0.3)
    if points:
        dev_ax = axes[0][1]
        dev_ax.plot([p["flops"] for p in points], [p["score"] for p in points], marker="o", color="#d62728", linewidth=1.4)
        dev_ax.set_xlabel("training FLOPs spent")
        dev_ax.set_ylabel("dev score")
        dev_ax.set_title("Dev score during training")
        dev_ax.grid(alpha=0.3)
    save_figure(fig, path)
    return True


def frontier(law: Any, rec: RunRecord, path: Path) -> dict[str, Any]:
    """Where this model sits against a fitted frontier (held-out loss at its budget), plus a plot when possible."""
    budget = float(rec.flops.budget)
    loss = rec.heldout.after.infonce if rec.heldout.after is not None else None
    method = rec.method.name
    best = law.method_for(budget)
    info: dict[str, Any] = {
        "budget": fmt_flops(budget),
        "best_method": best,
        "predicted": f"{law.loss(best, budget):.4f}",
        "own_predicted": f"{law.loss(method, budget):.4f}" if method in law.methods else None,
        "loss": f"{loss:.4f}" if isinstance(loss, (int, float)) else None,
        "ratio": f"{loss / law.loss(best, budget):.3f}" if isinstance(loss, (int, float)) else None,
        "method": method,
        "source": public_text(law.describe()),
        "plot": None,
    }
    plt = _pyplot()
    if plt is None:
        return info
    budgets = [b for f in law.methods.values() for b, _ in f.points] + [budget]
    lo, hi = math.log10(min(budgets)) - 0.3, math.log10(max(budgets)) + 0.3
    grid = [10 ** (lo + i * (hi - lo) / 100) for i in range(101)]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for name in sorted(law.methods):
        ax.plot(grid, [law.loss(name, c) for c in grid], linewidth=1.2, alpha=0.8, label=f"{name} (fitted)")
    ax.plot(grid, [min(law.loss(m, c) for m in law.methods) for c in grid], color="black", linewidth=2.4,
            alpha=0.7, label="frontier", zorder=0)
    if isinstance(loss, (int, float)) and loss > 0:
        ax.scatter([budget], [loss], marker="*", s=180, color="crimson", edgecolor="black", zorder=5,
                   label=f"this model ({method})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training budget (FLOP)")
    ax.set_ylabel("held-out contrastive loss")
    ax.set_title("This model against the fitted frontier")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    info["plot"] = FRONTIER_PLOT
    return info
