"""GPU throughput: tokens/s and model-FLOPs utilisation (MFU) of full FT and LoRA on a 410m-shaped model.

Runs only where CUDA is available; elsewhere it writes a result file saying it was skipped. Two paths
per method, both bf16 (autocast over fp32 master weights, as ``Recipe(precision="bf16")`` trains) with
SDPA attention on random:pythia-410m:

* ``st-recipe train()``: the real training path, steps timed by a callback added to its trainer
  (periodic checkpoints switched off with ``save_steps``, so the steady-state step is what is timed);
* ``raw loop``: the same model, method and loss in a bare PyTorch loop over pre-tokenised batches,
  an upper bound for what the Trainer-based path could reach.

MFU = exact-meter FLOPs (real tokens only, no padding) per second / peak dense bf16 FLOP/s. The
"padded" column counts the padding the GPU also computed.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C

# Dense bf16 tensor-core peaks (no sparsity), from the vendors' data sheets.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
TARGET_MFU = 0.45
NO_CHECKPOINTS = 10**9


def peak_flops(device_name: str, override_tflops: float | None) -> tuple[float | None, str]:
    """Peak bf16 FLOP/s for the device (or the override) and where the number came from."""
    if override_tflops:
        return override_tflops * 1e12, "--peak-tflops"
    for key, value in PEAK_BF16.items():
        if key in device_name:
            note = " (SXM figure; a PCIe H100 peaks at 756e12: pass --peak-tflops 756)" if key == "H100" and "PCIe" in device_name else ""
            return value, f"table entry {key}{note}"
    return None, "unknown device: pass --peak-tflops"


def st_recipe_path(model: str, method: str, batch: int, seq_len: int, steps: int, smoke: bool, work: Path) -> dict[str, Any]:
    """Train with st_recipe.training.train in bf16 and time its steps; returns throughput facts."""
    from train_overhead import WARMUP_STEPS, Probe, instrument_st_recipe

    from st_recipe.planning.recipes import Recipe
    from st_recipe.training import train

    probe = Probe()
    recipe = Recipe(model=model, method=method, pairs=batch * steps, batch_size=batch, learning_rate=3e-4,
                    max_seq_length=seq_len, precision="bf16")
    with instrument_st_recipe(probe):
        rec = train(recipe, "builtin", out=work / f"st-{method}-{time.monotonic_ns()}", quiet=True, save_steps=NO_CHECKPOINTS).record.to_dict()
    probe.close_step()
    its = probe.iterations()
    if not its:
        raise RuntimeError(f"too few steps timed ({len(probe.begin)}); raise --steps above {WARMUP_STEPS + 1}")
    per_step = statistics.fmean(its)
    n = rec["steps"]
    return {"step_s": per_step, "flops": rec["flops"]["spent"] / n, "padded": rec["flops"]["executed_with_padding"] / n,
            "tokens": rec["tokens_seen"] / n, "steps": len(its), "attn": probe.info.get("attn", "?")}


def raw_loop_path(model_name: str, method: str, batch: int, seq_len: int, steps: int, smoke: bool) -> dict[str, Any]:
    """The same step in a bare PyTorch loop over pre-tokenised batches (no Trainer, no data loading)."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from st_recipe import build_encoder
    from st_recipe.costing.flops import FlopMeter, lengths_from_mask, profile_model
    from st_recipe.data import load_pairs
    from st_recipe.methods import get_method

    device = "cpu" if smoke else "cuda"
    model = build_encoder(model_name, max_seq_length=seq_len, model_kwargs={"attn_implementation": "sdpa"})
    get_method(method).apply(model)
    meter, padded = FlopMeter(profile_model(model)), FlopMeter(profile_model(model), count_padding=True)
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.1, fused=not smoke)
    loss_fn = MultipleNegativesRankingLoss(model, scale=40.0, directions=("query_to_doc", "doc_to_query"),
                                           partition_mode="per_direction")
    data = load_pairs("builtin", seed=0)
    batches = []
    for i in range(4):  # a few distinct batches, cycled: lengths vary as in training
        sl = slice(i * batch, (i + 1) * batch)
        fa, fp = model.preprocess(list(data.anchors[sl])), model.preprocess(list(data.positives[sl]))
        sides = [lengths_from_mask(fa["attention_mask"]), lengths_from_mask(fp["attention_mask"])]
        batches.append(({k: v.to(device) for k, v in fa.items() if hasattr(v, "to")},
                        {k: v.to(device) for k, v in fp.items() if hasattr(v, "to")},
                        meter.batch_flops(sides), padded.batch_flops(sides), sum(map(sum, sides))))

    def step(i: int) -> None:
        fa, fp, *_ = batches[i % len(batches)]
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = loss_fn([dict(fa), dict(fp)], labels=None)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for i in range(3):
        step(i)
    sync()
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    sync()
    per_step = (time.perf_counter() - t) / steps
    mean = lambda k: statistics.fmean(b[k] for b in (batches[i % len(batches)] for i in range(steps)))  # noqa: E731
    attn = getattr(model[0].auto_model.config, "_attn_implementation", "?")
    out = {"step_s": per_step, "flops": mean(2), "padded": mean(3), "tokens": mean(4), "steps": steps, "attn": attn}
    if device == "cuda":
        out["peak_mem"] = torch.cuda.max_memory_allocated()
    model = opt = None  # release before emptying the CUDA cache
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def run(args: Any) -> str:
    """Measure both paths for full FT and LoRA and return the markdown body (or the skip notice)."""
    C.quiet_libraries()
    import torch

    smoke = args.smoke
    if not torch.cuda.is_available() and not smoke:
        return ("**Skipped: CUDA is not available on this machine.** Run `python bench/gpu_throughput.py` on a GPU"
                " host (H100/H200/A100 peaks are built in; `--peak-tflops` for others) to fill this table.")
    work = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    if smoke:
        # A CPU run of the same code on the tiny test model: checks the script, says nothing about GPUs.
        model, batch, seq_len, steps = str(C.make_tiny_model(work / "tiny")), 8, 32, 6
        device_name, peak, peak_src = "CPU smoke test", 1e12, "placeholder 1 TFLOP/s (smoke test)"
    else:
        model, batch, seq_len = args.model, args.batch, args.seq_len
        steps = 8 if args.quick else args.steps
        device_name = torch.cuda.get_device_name(0)
        peak, peak_src = peak_flops(device_name, args.peak_tflops)

    rows, full_mfu = [], None
    for method in ("full", "lora"):
        for path in ("st-recipe train()", "raw loop"):
            if path == "raw loop":
                r = raw_loop_path(model, method, batch, seq_len, steps, smoke)
            else:
                r = st_recipe_path(model, method, batch, seq_len, steps + 4, smoke, work)
            achieved = r["flops"] / r["step_s"]
            mfu = achieved / peak if peak else None
            if method == "full" and path.startswith("st-recipe"):
                full_mfu = mfu
            rows.append([method, path, r["attn"], r["steps"], f"{r['step_s'] * 1e3:.1f}", f"{r['tokens'] / r['step_s']:,.0f}",
                         f"{achieved / 1e12:.1f}", f"{mfu:.1%}" if mfu is not None else "n/a",
                         f"{r['padded'] / r['step_s'] / peak:.1%}" if peak else "n/a",
                         C.format_gib(r["peak_mem"]) if "peak_mem" in r else "-"])
    cols = ["method", "path", "attention", "timed steps", "ms / step", "real tokens / s", "model TFLOP/s", "MFU",
            "MFU incl. padding", "peak GPU memory"]
    if full_mfu is None:
        verdict = "not judged (no peak FLOP/s for this device)"
    else:
        verdict = ("met" if full_mfu >= TARGET_MFU else "MISSED") + f" (st-recipe full FT {full_mfu:.1%})"
    body = [
        f"Device: {device_name}; peak {peak / 1e12:.0f} TFLOP/s bf16 ({peak_src}). Model {model}, bf16 autocast,"
        f" batch {batch} pairs, max_seq_length {seq_len}, builtin pairs.",
        "",
        C.table(cols, rows),
        f"**Target: MFU >= {TARGET_MFU:.0%} for full FT — {verdict}.**",
        "",
        "Notes:",
        "- model FLOPs = st-recipe's exact meter (matmuls incl. attention scores, real tokens only); MFU = model"
        " FLOP/s / peak. MFU incl. padding uses the padded meter (what the GPU computed).",
        "- st-recipe train(): mean begin-to-begin step time after the first steps (includes batch collation,"
        " per-step logging and metering); checkpoints off. raw loop: pre-tokenised batches, fused AdamW, timed"
        " between CUDA syncs.",
    ]
    if smoke:
        body.insert(0, "**CPU smoke test of the script only — the numbers mean nothing for GPUs.**\n")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return "\n".join(body)


def main() -> None:
    """Run the benchmark and write bench/results/gpu_throughput[.quick].md."""

    def extra(parser: Any) -> None:
        parser.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s of the GPU")
        parser.add_argument("--model", default="random:pythia-410m")
        parser.add_argument("--batch", type=int, default=256, help="pairs per batch")
        parser.add_argument("--seq-len", type=int, default=75)
        parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
        parser.add_argument("--smoke", action="store_true", help="run the code path on CPU with the tiny model (no file)")

    args = C.parse_args(__doc__.splitlines()[0], extra)
    body = run(args)
    if args.smoke:
        print(body)
        return
    C.write_result("gpu_throughput", "GPU throughput and MFU", body, quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
