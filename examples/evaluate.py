"""Evaluate a run dir (or any sentence-transformers model) with MTEB: the paper's 15 tasks or local task files.

    python examples/evaluate.py runs/my-model --benchmark paper-15        # needs the Hub for task data
    python examples/evaluate.py runs/example --offline                     # a local STS file, no network
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from st_recipe.evaluation import evaluate


def write_local_sts(path: Path) -> Path:
    """A small STS file from the builtin pairs: matched pairs score 5, shuffled ones 0."""
    from st_recipe.data import load_pairs

    held = load_pairs("builtin", split="test")
    rng = random.Random(0)
    rows = []
    for i in range(40):
        rows.append({"sentence1": held.anchors[i], "sentence2": held.positives[i], "score": 5.0})
        j = rng.randrange(len(held))
        if j != i:
            rows.append({"sentence1": held.anchors[i], "sentence2": held.positives[j], "score": 0.0})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def main() -> None:
    """Run the evaluation and print the summary table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help="run dir, local ST folder or Hub id")
    parser.add_argument("--benchmark", action="append", default=[])
    parser.add_argument("--offline", action="store_true", help="evaluate on a local STS file made from builtin pairs")
    args = parser.parse_args()
    task_files = []
    if args.offline:
        task_files.append(str(write_local_sts(Path(args.model).with_suffix(".docstring-sts.jsonl"))))
    summary = evaluate(args.model, benchmarks=args.benchmark or (() if args.offline else ("paper-15",)),
                       task_files=task_files)
    print(summary.format())


if __name__ == "__main__":
    main()
