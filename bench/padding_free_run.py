"""What a default `st-recipe train` executes on each data shape: executed / useful FLOPs from the run record.

For each data shape of ``bench/padding_free.py`` (built-in pairs, short queries with long passages, fixed-length
texts; plus the short/long set at a cap of 160 tokens, where passages keep their length) the pairs are written to
a JSONL file and ``st-recipe train --model random:pythia-70m`` (``--model``) runs a few steps on it, as a user would: once by
default (padding-free) and once with ``--no-padding-free``. ``st_recipe.json`` records the FLOPs the meter counted
(``spent``, real tokens only) and what the layouts really executed (``executed_with_padding``); their ratio is the
padding the run paid for.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as C
import padding_free as PF


def run(data: Path, out: Path, max_len: int, budget: float, padding_free: bool, args: Any) -> dict:
    """One CLI training run; its run record."""
    cmd = [str(Path(sys.executable).with_name("st-recipe")), "train", "--model", args.model, "--data", str(data),
           "--budget", f"{budget:.4g}", "--batch-size", str(args.batch), "--max-seq-length", str(max_len),
           "--out", str(out), "--quiet", "--seed", "0"]
    if not padding_free:
        cmd.append("--no-padding-free")
    if args.bf16:
        cmd.append("--bf16")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"st-recipe train failed:\n{proc.stderr[-2000:]}")
    return json.loads((out / "st_recipe.json").read_text())


def main() -> None:
    def extra(parser: Any) -> None:
        parser.add_argument("--model", default="random:pythia-70m")
        parser.add_argument("--batch", type=int, default=32, help="pairs per batch")
        parser.add_argument("--steps", type=int, default=3, help="about this many steps per run")
        parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPU)")

    args = C.parse_args(__doc__.splitlines()[0], extra)
    C.quiet_libraries()
    from st_recipe.costing.flops import FlopMeter, profile_model
    from st_recipe.encoder import build_encoder

    model = build_encoder(args.model, max_seq_length=PF.MAX_LEN)
    meter = FlopMeter(profile_model(model))
    data = PF.datasets(args.batch * (args.steps + 4))
    shapes = [(name, PF.MAX_LEN) for name in data] + [("short q / long p", 160)]
    if args.quick:
        shapes = shapes[:2]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, max_len) in enumerate(shapes):
            anchors, positives = data[name]
            path = Path(tmp) / f"data{i}.jsonl"
            path.write_text("".join(json.dumps({"anchor": a, "positive": p}) + "\n" for a, p in zip(anchors, positives)))
            tok = model[0].tokenizer
            tokens = [len(x) for x in tok(anchors + positives, truncation=True, max_length=max_len)["input_ids"]]
            # A budget for about STEPS batches of this data's real tokens.
            budget = args.steps * args.batch * 2 * meter.profile.sequence_flops(int(statistics.mean(tokens))) * 1.05
            rec = {}
            for free in (True, False):
                r = run(path, Path(tmp) / f"run{i}-{free}", max_len, budget, free, args)
                rec[free] = r
            f, p = rec[True]["flops"], rec[False]["flops"]
            rows.append([name, str(max_len), str(rec[True]["steps"]), f"{f['spent']:.3g}",
                         f"{f['executed_with_padding']:.3g}", f"{f['executed_with_padding'] / f['spent']:.3f}",
                         f"{p['executed_with_padding'] / p['spent']:.3f}",
                         f"{rec[True]['wall_time_s']:.1f}", f"{rec[False]['wall_time_s']:.1f}"])
            print(rows[-1], flush=True)
    body = [f"`st-recipe train --model {args.model} --data <shape>.jsonl --budget <about {args.steps} batches> "
            f"--batch-size {args.batch} --max-seq-length <cap>{' --bf16' if args.bf16 else ''}` with and without "
            "`--no-padding-free`; the ratios are read from each run's "
            "`st_recipe.json` (`flops.executed_with_padding / flops.spent`).", "",
            C.table(["data", "max length", "steps", "metered (useful) FLOPs", "executed FLOPs (default)",
                     "executed / useful (default)", "executed / useful (--no-padding-free)", "wall s (default)",
                     "wall s (padded)"], rows),
            "", "Target (issue 25): executed / useful <= 1.05 in a default run on every shape. Wall times are single "
            "runs on a shared machine (bench/padding_free.md has the interleaved speed measurements)."]
    C.write_result("padding_free_run", "Padding-free training: what a default run executes", "\n".join(body),
                   quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
