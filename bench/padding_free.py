"""Padding-free training: pairs/s of st-recipe's padding-free step vs its padded step vs a plain ST script.

Parts 1-3 interleaved (every variant runs one step in turn, the order rotating each round, so
noise from other jobs on the machine hits all variants alike):

1. Candidates: forward + backward of the symmetric InfoNCE loss on one batch, for
   * ``padded``: today's path (each side padded to its longest text);
   * ``varlen`` (the default): each side as one flat stream of its real tokens, attention per text through
     transformers' SDPA function (st_recipe.training.varlen): no padding FLOPs at all;
   * ``packed``: each side's texts first-fit packed into rows of its longest length,
     ``position_ids`` restarting per text, transformers' packed-sequence causal mask (no attention across
     texts), token states scattered back for pooling (st_recipe.training.packed_rows.encode_packed);
   * ``sub-batch K``: each side cut into length-sorted sub-batches (st_recipe.training.packing) with a
     per-forward overhead of K tokens in the plan;
2. Training steps: full optimiser steps of the budget trainer (padding-free, default), the budget trainer
   with ``padding_free=False`` (today's path) and the stock ``SentenceTransformerTrainer`` + MNRL
   (scale 20, both directions, per-direction partition, AdamW) on the same model copy, batches and order.
   pairs/s is per step (wall); ratios are given on wall time and on process CPU time (CPU time does not
   grow while other jobs hold the cores, so its ratios survive a shared machine better); achieved FLOP/s is the metered useful FLOPs (real tokens) per step time
   and is compared with a 2-thread fp32 1024³ GEMM rate measured in the same run.

Data: the built-in pairs (``load_pairs("builtin")``: queries ~14 tokens, passages ~55, about half
truncated at 75), a synthetic short-query/long-passage set (queries 10-20 tokens, passages 30-150
tokens truncated at 75) and fixed-length texts (75 tokens both sides: nothing to save, checks >= 1.0x).
Models: random pythia-70m and pythia-160m widths with their layer count cut to LAYERS (the ratios depend
on the GEMM shapes, not the depth; a full-depth step takes minutes on a shared 2-core CPU).
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from typing import Any, Iterator

import _common as C

LAYERS = 2
MAX_LEN = 75
WORDS = [" the", " of", " and", " to", " in", " is", " that", " for", " with", " on", " as", " by"]


GPU_SECTION = """## 5. GPU (410m shape, bf16)

This benchmark runs on the CPU. The GPU numbers (MFU on fixed-length data, the padding-free speed-up on
variable-length data, peak memory against the planner's estimate) come from one prepared script,
`bash bench/gpu_check.sh`, which runs `bench/gpu_throughput.py` and `bench/padding_free_run.py --model
random:pythia-410m --bf16` and writes `bench/results/gpu_throughput.md` and `bench/results/padding_free_run.gpu.md`
with the device and date in their headers. Until a GPU machine runs it, those tables are empty (no device was lent
to the session that wrote this file)."""


def gemm_rate(threads: int = 2, n: int = 1024, reps: int = 10) -> float:
    """fp32 GEMM FLOP/s with ``threads`` threads (best of three)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best


def _text(n: int, rng: random.Random) -> str:
    return "".join(rng.choice(WORDS) for _ in range(n)).strip()


def datasets(n: int) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (anchors, positives) of ``n`` pairs."""
    from st_recipe.data import load_pairs

    rng = random.Random(0)
    pairs = load_pairs("builtin")
    idx = list(range(len(pairs)))
    rng.shuffle(idx)
    idx = idx[:n]
    return {
        "builtin": ([pairs.anchors[i] for i in idx], [pairs.positives[i] for i in idx]),
        "short q / long p": ([_text(rng.randint(10, 20), rng) for _ in range(n)],
                             [_text(rng.randint(30, 150), rng) for _ in range(n)]),
        "fixed 75": ([_text(80, rng) for _ in range(n)], [_text(80, rng) for _ in range(n)]),
    }


def build(shape: str, method: str) -> Any:
    from st_recipe.encoder import build_encoder
    from st_recipe.methods import get_method

    model = build_encoder(f"random:{shape}", max_seq_length=MAX_LEN)
    inner = model[0].auto_model
    inner.layers = inner.layers[:LAYERS]
    inner.config.num_hidden_layers = LAYERS
    get_method(method, **({"r": 8} if method == "lora" else {})).apply(model)
    return model


def _loss(model: Any) -> Any:
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss(model, scale=20.0, directions=("query_to_doc", "doc_to_query"),
                                        partition_mode="per_direction")


def candidates(shape: str, method: str, data: tuple[list[str], list[str]], batch: int, rounds: int,
               quick: bool = False) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds of forward + backward per candidate on one batch."""

    from st_recipe.costing.flops import profile_model
    from st_recipe.training.packing import PaddingFree, padding_free, plan_groups

    model = build(shape, method)
    model.train()
    loss_fn = _loss(model)
    features = [model.tokenize(data[0][:batch]), model.tokenize(data[1][:batch])]
    profile = profile_model(model)

    def free(k: int | None, use_varlen: bool = False) -> Any:
        plan = lambda n: plan_groups(n, cost=profile.sequence_flops, overhead=(k or 0) * profile.per_token)  # noqa: E731
        strategy = PaddingFree(plan, profile.sequence_flops, pack=k is None, varlen=use_varlen)

        def run() -> None:
            with padding_free(model, strategy):
                loss_fn([dict(f) for f in features], None).backward()
        return run

    def padded() -> None:
        loss_fn([dict(f) for f in features], None).backward()

    variants = {"padded": padded, "varlen": free(None, True), "packed": free(None), "sub-batch K=256": free(256)}
    if quick:
        variants = {k: variants[k] for k in ("padded", "varlen", "packed")}
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(rounds + 1):
        for name in names[r % len(names):] + names[: r % len(names)]:
            model.zero_grad(set_to_none=True)
            t, c = time.perf_counter(), time.process_time()
            variants[name]()
            if r:  # round 0 warms up
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
    return {k: statistics.median(v) for k, v in times.items()}, {k: statistics.median(v) for k, v in cpu.items()}


def compile_candidates(shape: str, method: str, data: tuple[list[str], list[str]], batch: int,
                       rounds: int) -> dict[str, dict[str, float]]:
    """Forward + backward of the loss with and without ``torch.compile`` (dynamic shapes) of the decoder.

    Each round takes a new batch, as training does, so the lengths change: the first call pays the compile
    (``first_s``), the median of the others is the steady state (``step_s``).
    """
    import torch

    from st_recipe.costing.flops import profile_model
    from st_recipe.training.packing import PaddingFree, padding_free, plan_groups

    out: dict[str, dict[str, float]] = {}
    for name in ("padded", "padded + compile", "varlen", "varlen + compile"):
        torch.manual_seed(0)
        torch._dynamo.reset()
        model = build(shape, method)
        model.train()
        if name.endswith("compile"):
            hf = model[0].auto_model  # sentence-transformers calls .forward itself, so compile that (not __call__)
            hf.forward = torch.compile(hf.forward, dynamic=True)
        loss_fn = _loss(model)
        profile = profile_model(model)
        strategy = PaddingFree(lambda n: plan_groups(n, cost=profile.sequence_flops), profile.sequence_flops)
        times = []
        for r in range(rounds + 1):
            lo = (r * batch) % (len(data[0]) - batch + 1)
            features = [model.tokenize(data[0][lo:lo + batch]), model.tokenize(data[1][lo:lo + batch])]
            model.zero_grad(set_to_none=True)
            t = time.perf_counter()
            try:
                if name.startswith("varlen"):
                    with padding_free(model, strategy):
                        loss_fn([dict(f) for f in features], None).backward()
                else:
                    loss_fn([dict(f) for f in features], None).backward()
            except Exception as exc:  # noqa: BLE001 - a compile failure is a result, reported as such
                out[name] = {"first_s": float("nan"), "step_s": float("nan"), "error": f"{type(exc).__name__}"}
                break
            times.append(time.perf_counter() - t)
        else:
            out[name] = {"first_s": times[0], "step_s": statistics.median(times[1:])}
        strategy.restore()
    return out


def _trainers(shape: str, method: str, data: tuple[list[str], list[str]], batch: int, steps: int, tmp: str) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    from st_recipe.costing.flops import FlopMeter, profile_model
    from st_recipe.training.packing import default_overhead, padding_free_strategy
    from st_recipe.training.trainer import BudgetState, make_trainer

    ds = Dataset.from_dict({"anchor": data[0], "positive": data[1]})
    out = {}
    for name in ("padding-free", "padded (today)", "plain ST"):
        torch.manual_seed(0)
        model = build(shape, method)
        args = SentenceTransformerTrainingArguments(
            output_dir=f"{tmp}/{name}", max_steps=steps, per_device_train_batch_size=batch, learning_rate=1e-4,
            weight_decay=0.1, warmup_steps=0, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no",
            logging_steps=10**9, report_to=[], seed=0, data_seed=0, use_cpu=True, disable_tqdm=True,
            dataloader_drop_last=True)
        meter = FlopMeter(profile_model(model))
        if name == "plain ST":
            trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, loss=_loss(model))
        else:
            strategy = padding_free_strategy(meter.profile, default_overhead("cpu")) if name == "padding-free" else None
            trainer = make_trainer(SentenceTransformerTrainer, meter=meter,
                                   padded_meter=FlopMeter(meter.profile, count_padding=True),
                                   state=BudgetState(budget=1e30), warmup=0, planned_steps=steps,
                                   checkpoints=__import__("pathlib").Path(tmp) / name, padding_free=strategy,
                                   model=model, args=args, train_dataset=ds, loss=_loss(model))
        trainer.create_optimizer_and_scheduler(num_training_steps=steps)
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer's own loop, which this bench replaces
        out[name] = (trainer, iter(trainer.get_train_dataloader()), meter)
    return out


def train_steps(shape: str, method: str, data: tuple[list[str], list[str]], batch: int, steps: int) -> dict[str, Any]:
    """Per-variant median step seconds and the useful FLOPs of the batches."""
    import tempfile

    from st_recipe.costing.flops import FlopMeter, lengths_from_mask

    with tempfile.TemporaryDirectory() as tmp:
        variants = _trainers(shape, method, data, batch, steps + 1, tmp)
        names = list(variants)
        times: dict[str, list[float]] = {k: [] for k in names}
        cpu: dict[str, list[float]] = {k: [] for k in names}
        useful: list[float] = []
        padded_flops: list[float] = []
        for r in range(steps + 1):
            for name in names[r % len(names):] + names[: r % len(names)]:
                trainer, it, meter = variants[name]
                inputs = next(it)
                if name == "plain ST" and r:
                    sides = [lengths_from_mask(inputs[k]) for k in inputs if k.endswith("attention_mask")]
                    useful.append(meter.batch_flops(sides))
                    padded_flops.append(FlopMeter(meter.profile, count_padding=True).batch_flops(sides))
                trainer.model.train()
                t, c = time.perf_counter(), time.process_time()
                trainer.training_step(trainer.model, inputs)
                trainer.optimizer.step()
                trainer.optimizer.zero_grad(set_to_none=True)
                if r:
                    times[name].append(time.perf_counter() - t)
                    cpu[name].append(time.process_time() - c)
        executed = {}
        for name, (trainer, _, _) in variants.items():
            settings = getattr(trainer, "budget_settings", None)
            if settings is not None:  # what the layouts really ran over what the meter counted (all steps)
                executed[name] = settings.state.step_padded / settings.state.step_flops
                if settings.padding_free is not None:
                    settings.padding_free.restore()
    return {"times": {k: statistics.median(v) for k, v in times.items()},
            "cpu": {k: statistics.median(v) for k, v in cpu.items()}, "executed": executed,
            "useful": statistics.mean(useful), "padding": statistics.mean(padded_flops) / statistics.mean(useful)}


@contextlib.contextmanager
def padding_free_encoding(st_model: Any) -> Iterator[bool]:
    """Within the block, ``st_model.encode`` runs padding-free (packed rows, checked once) where that is exact.

    Yields whether it does: a left-padded tokenizer keeps the padded batches. Measured here against plain encode
    (which already sorts texts by length); it lost, so held-out scores and ``st-recipe eval`` do not use it.
    """
    tokenizer = getattr(st_model[0], "tokenizer", None)
    if getattr(tokenizer, "padding_side", "right") != "right":
        yield False
        return
    import torch

    from st_recipe.costing.flops import profile_model
    from st_recipe.training.packing import default_overhead, padding_free, padding_free_strategy

    device = next(st_model.parameters()).device
    strategy = padding_free_strategy(profile_model(st_model), default_overhead(device))
    try:
        with torch.no_grad(), padding_free(st_model, strategy):
            yield True
    finally:
        strategy.restore()


def encode_rates(shape: str, texts: list[str], rounds: int, batch: int = 64) -> dict[str, Any]:
    """texts/s of ``encode`` padded (sentence-transformers sorts by length: today's eval path) vs padding-free."""
    model = build(shape, "full")
    model.eval()
    times: dict[str, list[float]] = {"padded": [], "padding-free": []}
    out: dict[str, Any] = {}
    for r in range(rounds + 1):  # round 0 warms up
        order = list(times) if r % 2 == 0 else list(reversed(times))
        for name in order:
            t0 = time.perf_counter()
            if name == "padded":
                emb = model.encode(texts, batch_size=batch, convert_to_tensor=True)
            else:
                with padding_free_encoding(model):
                    emb = model.encode(texts, batch_size=batch, convert_to_tensor=True)
            if r:
                times[name].append(time.perf_counter() - t0)
            out[name] = emb
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"texts_per_s": {k: len(texts) / v for k, v in med.items()},
            "max_diff": float((out["padded"] - out["padding-free"]).abs().max())}


def main() -> None:
    def extra(parser: Any) -> None:
        parser.add_argument("--threads", type=int, default=2, help="torch threads for the training steps (default 2)")

    args = C.parse_args(__doc__.splitlines()[0], extra)
    C.quiet_libraries()
    import torch

    rate1 = gemm_rate(threads=1)
    batch = 32
    rate = rate2 = gemm_rate(threads=2)
    torch.set_num_threads(args.threads)
    if args.threads == 1:
        rate = rate1
    data = datasets(batch * 8)
    shapes = ["pythia-70m"] if args.quick else ["pythia-70m", "pythia-160m"]
    methods = ["full", "lora"]
    cand_rounds, steps = (2, 2) if args.quick else (3, 4)
    cand_data = ("builtin",) if args.quick else ("builtin", "short q / long p")
    body = [f"fp32 GEMM (1024³) in this run: **{rate1 / 1e9:.1f} GFLOP/s** on 1 thread, **{rate2 / 1e9:.1f} GFLOP/s** "
            f"on 2 threads; the steps ran on **{args.threads}** thread(s) (\"of GEMM rate\" compares with that "
            f"count). Models: random {', '.join(shapes)} "
            f"widths, {LAYERS} layers; batch {batch} pairs; max length {MAX_LEN}.", ""]

    lengths = {}
    from st_recipe.encoder import build_encoder

    tok = build_encoder("random:pythia-70m", max_seq_length=MAX_LEN)[0].tokenizer
    for name, (a, p) in data.items():
        la = [len(x) for x in tok(a, truncation=True, max_length=MAX_LEN)["input_ids"]]
        lp = [len(x) for x in tok(p, truncation=True, max_length=MAX_LEN)["input_ids"]]
        lengths[name] = f"queries {statistics.mean(la):.1f} tokens, passages {statistics.mean(lp):.1f} " \
                        f"({sum(t == MAX_LEN for t in lp) / len(lp):.0%} at {MAX_LEN})"
    body += ["Data: " + "; ".join(f"**{k}**: {v}" for k, v in lengths.items()), ""]

    # 1. candidates (70m width, both methods, the two variable-length data sets)
    rows = []
    for method in methods:
        for dname in cand_data:
            t, c = candidates("pythia-70m", method, data[dname], batch, cand_rounds, args.quick)
            rows.append([method, dname] + [f"{t['padded'] / t[k]:.2f}× / {c['padded'] / c[k]:.2f}×" for k in t])
            print(rows[-1], flush=True)
    cols = list(t)
    body += ["## 1. Candidates: forward + backward of the loss, speed-up over padded (pythia-70m width)", "",
             "Each cell: wall-time ratio / CPU-time ratio (medians).", "",
             C.table(["method", "data"] + cols, rows),
             "", "transformers' `flex_attention` with a document mask is not a candidate on this machine: torch "
             f"{torch.__version__} raises `NotImplementedError: FlexAttention does not support backward on CPU`.", ""]

    # 2. training steps
    rows = []
    for shape in shapes:
        for method in methods:
            for dname in data:
                res = train_steps(shape, method, data[dname], batch, steps)
                t = res["times"]
                free, padded, plain = t["padding-free"], t["padded (today)"], t["plain ST"]
                c = res["cpu"]
                rows.append([shape, method, dname, f"{res['padding']:.2f}", f"{res['executed']['padding-free']:.3f}",
                             f"{batch / free:.2f}", f"{batch / padded:.2f}",
                             f"{batch / plain:.2f}", f"{padded / free:.2f}×", f"{padded / free / res['padding']:.2f}",
                             f"{c['padded (today)'] / c['padding-free']:.2f}×", f"{plain / free:.2f}×",
                             f"{c['plain ST'] / c['padding-free']:.2f}×",
                             f"{res['useful'] / free / 1e9:.1f}", f"{res['useful'] / free / rate:.0%}"])
                print(rows[-1], flush=True)
    body += ["## 2. Training steps (optimiser step included), interleaved", "",
             C.table(["shape", "method", "data", "padded / useful FLOPs", "executed / useful (free)",
                      "pairs/s free", "pairs/s padded",
                      "pairs/s plain ST", "free / padded (wall)", "of ceiling", "(CPU)", "free / plain ST (wall)", "(CPU)",
                      "useful GFLOP/s (free)", "of GEMM rate"], rows),
             "`padded / useful FLOPs` is the ceiling of any padding-free speed-up on that data (the padded "
             "path's metered FLOPs over the real tokens' FLOPs).", "",
             "`executed / useful (free)` is what the padding-free layouts ran over what the meter counted; `of "
             "ceiling` is the speed-up over padded divided by that ceiling. Targets (issue 25): executed / useful "
             "<= 1.05 on every shape; speed-up >= 0.9 of the ceiling on each shape and >= 1.3× on the built-in "
             "data; no shape slower than padded; >= 70 % of the GEMM rate for full FT at the 160m shape. Medians of "
             "the measured steps after one warm-up round; the machine is shared "
             "(see the load average above), so single ratios carry noise of several percent."]

    # 4. torch.compile of the decoder (the padding-free training step's forward + backward)
    rows = []
    for dname in ("builtin",):
        res = compile_candidates(shapes[-1], "full", data[dname], batch, rounds=3 if args.quick else 6)
        base = res["padded"]["step_s"]
        for name, r in res.items():
            rows.append([shapes[-1], dname, name, f"{r['first_s']:.1f}", f"{r['step_s']:.2f}",
                         f"{base / r['step_s']:.2f}×", r.get("error", "")])
            print(rows[-1], flush=True)
    compile_body = ["", "## 4. `torch.compile` of the decoder (full FT, forward + backward of the loss)", "",
                    "`torch.compile(model.forward, dynamic=True)` on the transformers model (sentence-transformers calls `forward`); every call takes a new batch, so "
                    "lengths change as in training. `first call` includes compiling.", "",
                    C.table(["shape", "data", "variant", "first call (s)", "later calls (s, median)",
                             "speed-up over padded", "error"], rows)]

    # 3. encoding (held-out scores and st-recipe eval)
    rows = []
    for shape in shapes:
        for dname, (a, p) in data.items():
            if dname == "fixed 75" and args.quick:
                continue
            res = encode_rates(shape, a + p, rounds=2 if args.quick else 3)
            r = res["texts_per_s"]
            rows.append([shape, dname, f"{r['padded']:.1f}", f"{r['padding-free']:.1f}",
                         f"{r['padding-free'] / r['padded']:.2f}×", f"{res['max_diff']:.1e}"])
            print(rows[-1], flush=True)
    body += ["", "## 3. Encoding: held-out scores and `st-recipe eval`", "",
             "`encode` of every query and passage of the set (batch 64). Before: sentence-transformers' own encode, "
             "which already sorts texts by length, so only the padding left inside each sorted batch can go. After: "
             "the same call inside `padding_free_encoding` (this file: the training path's default strategy, i.e. the "
             "flat stream with attention per text, checked once against the padded batch). Interleaved rounds, "
             "medians. Where after / before is below 1, held-out scores and `st-recipe eval` keep "
             "sentence-transformers' length-sorted encode.", "",
             C.table(["shape", "data", "texts/s before (padded, sorted)", "texts/s after (padding-free)", "after / before",
                      "max |Δ embedding|"], rows)]
    body += compile_body + ["", GPU_SECTION]
    C.write_result("padding_free", "Padding-free training", "\n".join(body), quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
