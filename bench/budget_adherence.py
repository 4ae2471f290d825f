"""Budget adherence: FLOPs spent / budget for each method on short st_recipe.training.train runs.

Each run trains the tiny test model on the builtin pairs at batch 16 with an explicit FLOP budget
sized for about N steps (deliberately not a whole number of batches, so the run has to end on a
partial batch), then reads ``record["flops"]``. Target: spent / budget in [0.99, 1.0].
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C

METHODS = C.METHODS
LOW, HIGH = 0.99, 1.0
BATCH = 16


def _label(name: str, args: dict[str, Any]) -> str:
    inner = ", ".join(f"{k}={v}" for k, v in args.items())
    return f"{name}({inner})" if inner else name


def budget_for_steps(model_dir: Path, name: str, args: dict[str, Any], data: Any, seq_len: int, steps: float) -> float:
    """A FLOP budget worth about ``steps`` batches of this data under the exact meter."""
    from st_recipe import build_encoder
    from st_recipe.costing.flops import FlopMeter, profile_model
    from st_recipe.methods import get_method

    model = build_encoder(str(model_dir), max_seq_length=seq_len)
    get_method(name, **args).apply(model)
    meter = FlopMeter(profile_model(model))
    tok = model[0].tokenizer
    sample = 1024
    sides = [[len(ids) for ids in tok(list(texts[:sample]), truncation=True, max_length=seq_len)["input_ids"]]
             for texts in (data.anchors, data.positives)]
    per_pair = meter.batch_flops(sides) / sample
    return per_pair * BATCH * steps


def run(quick: bool) -> str:
    """Train every method on its budget and return the markdown body."""
    C.quiet_libraries()
    from st_recipe.data import load_pairs
    from st_recipe.planning.recipes import Recipe
    from st_recipe.training import train

    steps = 30.37 if quick else 80.37
    configs = [(name, args, 32) for name, args in METHODS]
    if not quick:
        # Longer texts: more ragged batches, so more padding between the real-token and padded meters.
        configs += [("full", {}, 75), ("lora", {}, 75)]
    work = Path(tempfile.mkdtemp(prefix="bench_budget_"))
    model_dir = C.make_tiny_model(work / "tiny")
    data = load_pairs("builtin", seed=0)

    rows, misses = [], []
    for i, (name, args, seq_len) in enumerate(configs):
        budget = budget_for_steps(model_dir, name, args, data, seq_len, steps)
        recipe = Recipe(model=str(model_dir), method=name, method_args=args, pairs=BATCH * int(steps), batch_size=BATCH,
                        learning_rate=1e-3, budget=budget, max_seq_length=seq_len)
        t = time.perf_counter()
        rec = train(recipe, "builtin", out=work / f"run{i}", quiet=True).record.to_dict()
        wall = time.perf_counter() - t
        fl = rec["flops"]
        frac = fl["spent_fraction"]
        if not LOW <= frac <= HIGH:
            misses.append(f"{_label(name, args)} (len {seq_len}): {frac:.5f}")
        rows.append([_label(name, args), seq_len, f"{budget:.4g}", f"{fl['spent']:.4g}", f"{frac:.5f}", rec["steps"],
                     rec["planned_steps"], fl["stopped_by"], f"{fl['executed_with_padding'] / budget:.3f}",
                     f"{fl['paper_formula'] / budget:.3f}", f"{wall:.1f}"])

    cols = ["method", "max len", "budget", "spent", "spent / budget", "steps", "planned", "stopped by",
            "padded / budget", "paper formula / budget", "wall s"]
    verdict = "met" if not misses else "MISSED for " + "; ".join(misses)
    body = [
        f"Tiny test model (GPT-NeoX, hidden 32, 2 layers), builtin pairs, batch {BATCH}, budget sized for"
        f" ~{steps:g} steps of the exact meter on a 1024-pair sample (a fraction of a batch left over on purpose).",
        "",
        C.table(cols, rows),
        f"**Target: spent / budget in [{LOW}, {HIGH}] — {verdict}.**",
        "",
        "Notes:",
        "- spent = the exact meter on the real tokens of every trained batch (`record['flops']['spent']`);"
        " the run stops before a batch that would overshoot and trains the leading pairs of it that still fit.",
        "- padded / budget = what the hardware computed including padding (`executed_with_padding`), above 1 by"
        " the padding share of the batches; paper formula / budget = `flops_per_token(N, N_t)` × real tokens, which"
        " ignores attention and counts biases and norms as matmul weights.",
        "- planned = budget // (mean pair cost × batch); the budget check, not the plan, ends the run.",
    ]
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return "\n".join(body)


def main() -> None:
    """Run the benchmark and write bench/results/budget_adherence[.quick].md."""
    args = C.parse_args(__doc__.splitlines()[0])
    C.write_result("budget_adherence", "Budget adherence: FLOPs spent / budget", run(args.quick), quick=args.quick,
                   out=args.out)


if __name__ == "__main__":
    main()
