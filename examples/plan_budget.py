"""Plan a run for a FLOP budget (and a memory cap) and print where every value came from.

    python examples/plan_budget.py --budget 1e17 --max-memory 24GB
"""

from __future__ import annotations

import argparse

from st_recipe.planning.planner import plan


def main() -> None:
    """Print the recipe with provenance."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", default="1e17", help="training compute in FLOPs")
    parser.add_argument("--max-memory", default=None, help="e.g. 24GB")
    parser.add_argument("--offline", action="store_true", help="(planning never needs the network anyway)")
    args = parser.parse_args()
    recipe = plan(args.budget, max_memory=args.max_memory)
    print(f"{recipe.model} + {recipe.method} {recipe.method_args}: {recipe.pairs:,} pairs in {recipe.steps:,} steps")
    for name in recipe.field_names():
        prov = recipe.provenance[name]
        print(f"  {name:16s} {str(getattr(recipe, name)):>24s}   {prov.source}: {prov.note}")


if __name__ == "__main__":
    main()
