"""The paper's algorithm on your own setup: sweep a small grid, fit per-method laws, plan a bigger budget.

    python examples/sweep_and_fit.py --models pythia-14m,pythia-31m --budgets 1e15,4e15,1.6e16 --out runs/sweep
    python examples/sweep_and_fit.py --offline --out runs/sweep-example           # tiny, offline, a few minutes
"""

from __future__ import annotations

import argparse
from pathlib import Path

from st_recipe.planning.planner import plan
from st_recipe.planning.scaling import fit_points, plot_frontier
from st_recipe.sweeps.grid import load_points, sweep


def main() -> None:
    """Sweep, fit, plot, and plan with the fitted law."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="pythia-14m,pythia-31m")
    parser.add_argument("--budgets", default="1e15,4e15,1.6e16")
    parser.add_argument("--methods", default="full,lora")
    parser.add_argument("--data", default="builtin")
    parser.add_argument("--out", default="runs/sweep")
    parser.add_argument("--offline", action="store_true", help="random tiny model, tiny budgets, batch 16")
    args = parser.parse_args()
    if args.offline:
        models, budgets, extra = ["random:pythia-14m"], [4e10, 1.2e11], {"batch_size": 16, "max_seq_length": 32}
    else:
        models, budgets, extra = args.models.split(","), [float(b) for b in args.budgets.split(",")], {}
    rows = sweep(budgets, models, args.methods.split(","), out=args.out, data=args.data, quiet=True, **extra)
    for r in rows:
        print(f"{r['cell']:40s} held-out loss {r['heldout_loss']:.4f}  spent {r['spent_fraction']:.3f}")
    points = load_points(args.out)
    law = fit_points(points, source=args.out)
    for method, f in sorted(law.methods.items()):
        print(f"{method}: log10(loss) = {f.intercept:.4f} + {f.slope:.4f} log10(FLOP)  (R² {f.r2:.3f})")
    plot = plot_frontier(law, points, Path(args.out) / "frontier.png")
    target = max(budgets) * 4
    recipe = plan(target, fitted=law, batch_size=extra.get("batch_size"), model=models[0] if args.offline else None)
    print(f"at {target:.3g} FLOP the fitted frontier picks {recipe.method} on {recipe.model}; plot: {plot}")


if __name__ == "__main__":
    main()
