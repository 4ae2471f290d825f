"""Train an embedding model within a FLOP budget and load the result with plain sentence-transformers.

    python examples/train.py --budget 1e17 --data pairs.jsonl --out runs/my-model        # a real run
    python examples/train.py --offline --out runs/example                                 # tiny, offline, ~1 min
"""

from __future__ import annotations

import argparse

from st_recipe.planning.planner import plan
from st_recipe.training import TrainOptions, train


def main() -> None:
    """Plan, train, and report budget adherence and held-out scores."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", default="1e17")
    parser.add_argument("--data", default="builtin", help="builtin, a local jsonl/csv/parquet, or a Hub dataset id")
    parser.add_argument("--out", default="runs/example")
    parser.add_argument("--offline", action="store_true", help="random tiny model, small budget, builtin data")
    args = parser.parse_args()
    if args.offline:
        recipe = plan(1.5e11, model="random:pythia-14m", method="lora", method_args={"r": 8}, batch_size=16)
    else:
        recipe = plan(args.budget)
    result = train(recipe, args.data, TrainOptions(out=args.out, overwrite=True, quiet=True))
    rec = result.record  # a typed RunRecord, the content of st_recipe.json
    print(f"trained {recipe.model} with {recipe.method}: {rec.steps} steps, "
          f"FLOPs spent {rec.flops.spent_fraction:.2%} of the budget")
    print(f"held-out InfoNCE {rec.heldout.before.infonce:.3f} -> {rec.heldout.after.infonce:.3f}")

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.out)  # a plain ST folder: no st_recipe needed to load it
    print("embedding shape:", model.encode(["an example sentence"]).shape)


if __name__ == "__main__":
    main()
