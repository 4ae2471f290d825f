"""FLOP meter accuracy: st-recipe's exact meter and the paper's formula against torch's FlopCounterMode.

For each method and model shape, one forward+backward of a symmetric InfoNCE step (the training loss:
MultipleNegativesRankingLoss, scale 40, both directions) is run under
``torch.utils.flop_counter.FlopCounterMode`` on two batches: texts of equal length (no padding) and a
ragged batch of real pairs (padded to the longest text). The exact meter is compared with the default
setting on the equal batch and with ``count_padding=True`` on the padded one (what the hardware really
computed); the paper's formula is ``flops_per_token(N, N_t)`` × the tokens computed (padding included).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import _common as C

METHODS = C.METHODS
TARGET = 0.02


def _label(name: str, args: dict[str, Any]) -> str:
    inner = ", ".join(f"{k}={v}" for k, v in args.items())
    return f"{name}({inner})" if inner else name


def measure_step(model: Any, anchors: list[str], positives: list[str]) -> tuple[float, list[list[int]]]:
    """FLOPs torch counts for one forward+backward of the training loss, and each side's token counts."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from torch.utils.flop_counter import FlopCounterMode

    from st_recipe.costing.flops import lengths_from_mask

    loss_fn = MultipleNegativesRankingLoss(model, scale=40.0, directions=("query_to_doc", "doc_to_query"),
                                           partition_mode="per_direction")
    fa, fp = model.preprocess(anchors), model.preprocess(positives)
    lengths = [lengths_from_mask(fa["attention_mask"]), lengths_from_mask(fp["attention_mask"])]
    padded = [[f["attention_mask"].shape[1]] * len(s) for f, s in zip((fa, fp), lengths)]
    model.train()
    counter = FlopCounterMode(display=False)
    with counter:
        loss = loss_fn([dict(fa), dict(fp)], labels=None)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops()), [lengths, padded]


def batches(n_pairs: int, max_len: int) -> dict[str, tuple[list[str], list[str]]]:
    """An equal-length batch (no padding) and a ragged batch of real builtin pairs."""
    from st_recipe.data import load_pairs

    words = " ".join(["word"] * (max_len // 2))
    equal = ([words] * n_pairs, [words + " more"] * n_pairs)
    data = load_pairs("builtin", seed=0)
    ragged = (list(data.anchors[:n_pairs]), list(data.positives[:n_pairs]))
    return {"equal length": equal, "padded": ragged}


def run(quick: bool) -> str:
    """Measure every (shape, method, batch) and return the markdown body."""
    C.quiet_libraries()
    from st_recipe import build_encoder
    from st_recipe.costing.flops import FlopMeter, profile_model
    from st_recipe.methods import get_method

    n_pairs, max_len = (4, 32) if quick else (16, 75)
    kwargs = {"attn_implementation": "eager"}
    tmp = Path(tempfile.mkdtemp(prefix="bench_flops_"))
    shapes = {
        "tiny (h32, L2)": build_encoder(str(C.make_tiny_model(tmp / "tiny")), max_seq_length=max_len, model_kwargs=kwargs),
        "pythia-14m": build_encoder("random:pythia-14m", max_seq_length=max_len, model_kwargs=kwargs),
    }
    data = batches(n_pairs, max_len)
    rows, misses, worst_exact = [], [], 0.0
    for shape, base in shapes.items():
        for name, args in METHODS:
            model = copy.deepcopy(base)
            method = get_method(name, **args)
            report = method.apply(model)
            profile = profile_model(model)
            per_token = method.flops_per_token(report.n_params, report.n_trainable)
            for kind, (anchors, positives) in data.items():
                measured, (lengths, padded) = measure_step(model, anchors, positives)
                meter = FlopMeter(profile, count_padding=(kind == "padded"))
                exact = meter.batch_flops(lengths)
                computed_tokens = sum(sum(s) for s in padded)
                paper = per_token * computed_tokens
                err_exact, err_paper = exact / measured - 1, paper / measured - 1
                worst_exact = max(worst_exact, abs(err_exact))
                if abs(err_exact) > TARGET:
                    misses.append(f"{shape} {_label(name, args)} {kind}")
                rows.append([shape, _label(name, args), kind, C.fmt_count(report.n_params), C.fmt_count(report.n_trainable),
                             f"{measured:.4g}", f"{exact:.4g}", C.fmt_pct(err_exact), f"{paper:.4g}", C.fmt_pct(err_paper)])

    # Why eager: on CPU, SDPA runs a fused kernel that FlopCounterMode does not count, so the attention
    # scores would silently vanish from the reference. One row shows the size of that hole.
    sdpa = build_encoder("random:pythia-14m", max_seq_length=max_len, model_kwargs={"attn_implementation": "sdpa"})
    get_method("full").apply(sdpa)
    sdpa_measured, (lengths, _) = measure_step(sdpa, *data["equal length"])
    sdpa_exact = FlopMeter(profile_model(sdpa)).batch_flops(lengths)

    cols = ["shape", "method", "batch", "N", "N_t", "measured", "exact meter", "error %", "paper formula", "error %"]
    verdict = "met" if not misses else f"MISSED for {', '.join(misses)}"
    body = [
        f"Batch: {n_pairs} pairs, max_seq_length {max_len}; 'equal length' = every text the same length (no padding),"
        " 'padded' = the first builtin pairs, padded to each side's longest text.",
        "",
        C.table(cols, rows),
        f"**Target: exact meter within ±{TARGET:.0%} of FlopCounterMode — {verdict} (worst error {worst_exact:.2%}).**",
        "",
        "Notes:",
        "- measured = `torch.utils.flop_counter.FlopCounterMode` total for one forward + backward of"
        " `MultipleNegativesRankingLoss(scale=40, directions=(query_to_doc, doc_to_query), partition_mode=per_direction)`.",
        "- exact meter = `FlopMeter(profile_model(model))`: default (real tokens only) on the equal-length batch,"
        " `count_padding=True` on the padded batch (padding is computed by the hardware, so it is what torch counts).",
        "- paper formula = `method.flops_per_token(N, N_t)` × tokens computed (padding included). It is a planning"
        " convention, not a meter: it ignores the attention-score matmuls (4·T²·d forward, 8·T²·d backward per"
        " layer where gradients flow), which grow with T while the weight terms grow with h², so it undershoots"
        " most on short-hidden models (the tiny shape, h = 32) and long sequences; it also counts biases and norms"
        " as matmul weights, which slightly offsets that.",
        "- The remaining LoRA gap (about −0.1 % on pythia-14m, −0.6 % on the tiny shape) is one r × h matmul per"
        " token: the gradient flowing into the input-embedding adapter's A (after_A = lookup(A), out += after_A @ B)."
        " `profile_model` adds 2·|B| backward only for B's weight gradient, not the 2·|B| for the gradient into"
        " after_A, which autograd also computes.",
        "- The encoders are built with `attn_implementation=\"eager\"`: on CPU the default SDPA path runs the fused"
        " `_scaled_dot_product_flash_attention_for_cpu` kernel, which FlopCounterMode does not count, so the"
        f" attention scores would be missing from the reference. With SDPA on pythia-14m (full, equal-length batch)"
        f" torch counts {sdpa_measured:.4g} FLOP against the meter's {sdpa_exact:.4g}"
        f" ({C.fmt_pct(sdpa_exact / sdpa_measured - 1)}): that gap is the uncounted attention, not a meter error.",
        "- Embedding lookups are not matmuls and cost nothing here; LoRA on the input embedding adds an r × h"
        " matmul per token, which the meter includes.",
    ]
    return "\n".join(body)


def main() -> None:
    """Run the benchmark and write bench/results/flop_meter[.quick].md."""
    args = C.parse_args(__doc__.splitlines()[0])
    C.write_result("flop_meter", "FLOP meter vs torch FlopCounterMode", run(args.quick), quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
