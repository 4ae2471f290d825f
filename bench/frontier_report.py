"""``bench/results/frontier.md`` from ``bench/results/frontier.jsonl``: the grid, seeds, dev and test scores, the fit."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import _common as C

SETS_ORDER = ("lee", "newsgroups", "polarity", "simlex")
CHOICE_SETS = ("lee", "newsgroups")  # as bench/frontier.py: what cells are chosen on


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(values: list[float]) -> str:
    """``mean ± std (n)``, or the single value."""
    if not values:
        return "-"
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f} ({len(values)})" if len(values) > 1 else f"{m:.3f}"


def scores(rows: list[dict[str, Any]], key: str) -> list[float]:
    """One score per seed (rows lacking the set are skipped)."""
    return [r["scores"][key] for r in rows if key in r["scores"]]


def present_sets(rows: list[dict[str, Any]]) -> list[str]:
    """Evaluation sets every row was scored on, in report order."""
    return [s for s in SETS_ORDER if rows and all(f"{s}.dev" in r["scores"] for r in rows)]


def gap(a: list[float], b: list[float]) -> tuple[float, float, str]:
    """(mean a − mean b, the larger std, verdict): a gap is real only when it exceeds the spread of both."""
    if not a or not b:
        return float("nan"), float("nan"), "-"
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    spread = max(sa, sb)
    if len(a) < 2 and len(b) < 2:
        return ma - mb, spread, "one seed, no spread yet"
    verdict = "real" if abs(ma - mb) > spread else "within noise"
    # One side seeded: its spread is the only measure of noise there is; say that the other side is a single run.
    return ma - mb, spread, verdict + (", one side a single seed" if min(len(a), len(b)) < 2 else "")


def _spread(spread: float, verdict: str) -> str:
    return verdict if verdict.startswith("one seed") else f"spread {spread:.3f}: {verdict}"


def is_planned(row: dict[str, Any]) -> bool:
    """The plain default as it stands now (a row is re-read under today's defaults, not those it ran under)."""
    from frontier import default_scale

    return (not row["baseline"] and row.get("method") == "full" and not row.get("args") and not row.get("levers")
            and row.get("lr_scale") == default_scale())


def grouped(rows: list[dict[str, Any]], budget: float) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["budget"] == budget:
            out.setdefault(r["config"], []).append(r)
    return out


def budget_section(rows: list[dict[str, Any]], budget: float, sets: list[str], untrained: dict[str, float]) -> list[str]:
    """One budget: every configuration with dev and test mean ± std over its seeds, ranked by mean dev score."""
    groups = grouped(rows, budget)
    choice = [s for s in CHOICE_SETS if s in sets] or sets
    dev = {cfg: statistics.fmean(v for s in choice for v in scores(rs, f"{s}.dev")) for cfg, rs in groups.items()}
    ranked = sorted(groups, key=lambda c: -dev[c])
    cols = ["config", "LR", "mean dev (" + " + ".join(choice) + ")"] + [f"{s} dev" for s in sets] + [f"{s} test" for s in sets] + \
        ["pairs", "spent", "held-out InfoNCE"]
    table = []
    for cfg in ranked:
        rs = groups[cfg]
        tag = " **(planned)**" if is_planned(rs[0]) else (" (ST baseline)" if rs[0]["baseline"] else
                                                         " (earlier default)" if rs[0]["planned"] else "")
        held = [r["heldout_after"] for r in rs if r.get("heldout_after") is not None]
        table.append([f"`{cfg}`{tag}", f"{rs[0]['lr']:.3g}", f"{dev[cfg]:.3f}",
                      *(fmt(scores(rs, f"{s}.dev")) for s in sets), *(fmt(scores(rs, f"{s}.test")) for s in sets),
                      str(rs[0]["pairs_seen"]), f"{statistics.fmean(r['spent_fraction'] for r in rs):.3f}",
                      fmt(held) if held else "-"])
    lines = [f"### Budget {budget:.2g} FLOP", "", C.table(cols, table), ""]
    return lines + verdicts(groups, ranked, sets, untrained) + lever_lines(groups, choice)


def verdicts(groups: dict[str, list[dict[str, Any]]], ranked: list[str], sets: list[str],
             untrained: dict[str, float]) -> list[str]:
    """Planned vs the best cell, vs the hand-written baseline and vs the untrained model, on each test part."""
    planned = next((c for c in ranked if is_planned(groups[c][0])), None)
    baseline = next((c for c in ranked if groups[c][0]["baseline"]), None)
    best = next((c for c in ranked if not groups[c][0]["baseline"]), None)
    if planned is None:
        return []
    out = []
    for s in sets:
        p = scores(groups[planned], f"{s}.test")
        parts = [f"{s} test: planned {fmt(p)}"]
        if best and best != planned:
            d, spread, v = gap(p, scores(groups[best], f"{s}.test"))
            parts.append(f"vs best-by-dev `{best}` {d:+.3f} ({_spread(spread, v)}; target ≥ −0.01)")
        if baseline:
            d, spread, v = gap(p, scores(groups[baseline], f"{s}.test"))
            parts.append(f"vs ST baseline {d:+.3f} ({_spread(spread, v)}; target ≥ +0.03)")
        if s in untrained:
            parts.append(f"vs untrained {statistics.fmean(p) - untrained[s]:+.3f}")
        out.append("- " + "; ".join(parts))
    return out + [""]


def dev_means(rs: list[dict[str, Any]], choice: list[str]) -> list[float]:
    """One value per seed: the mean of its dev scores on the sets cells are chosen on."""
    return [statistics.fmean(r["scores"][f"{s}.dev"] for s in choice) for r in rs
            if all(f"{s}.dev" in r["scores"] for s in choice)]


def lever_lines(groups: dict[str, list[dict[str, Any]]], choice: list[str]) -> list[str]:
    """Each lever against the same cell without it, each method against full FT at the same LR scale (mean dev)."""
    by_cfg = {cfg: rs for cfg, rs in groups.items() if not rs[0]["baseline"]}
    out = []
    for cfg, rs in sorted(by_cfg.items()):
        r = rs[0]
        if r["levers"]:
            ref = cfg.split("+")[0]
        elif r["method"] != "full":
            ref = f"full@{r['lr_scale']:g}x"
        else:
            continue
        if ref not in by_cfg:
            continue
        d, spread, v = gap(dev_means(rs, choice), dev_means(by_cfg[ref], choice))
        out.append(f"- `{cfg}` vs `{ref}`: {d:+.3f} mean dev ({_spread(spread, v)})")
    return (["Levers and methods against their reference (mean dev; the lever's only change):", "", *out, ""]
            if out else [])


def summary_table(rows: list[dict[str, Any]], sets: list[str], untrained: dict[str, float]) -> list[str]:
    """The targets at a glance: planned default vs best cell by dev, ST-defaults script and untrained, on test parts."""
    choice = [s for s in CHOICE_SETS if s in sets] or sets
    table = []
    for b in sorted({r["budget"] for r in rows}):
        groups = grouped(rows, b)
        planned = next((c for c, rs in groups.items() if is_planned(rs[0])), None)
        if planned is None:
            continue
        base = next((c for c, rs in groups.items() if rs[0]["baseline"]), None)
        cells = [c for c, rs in groups.items() if not rs[0]["baseline"]]
        best = max(cells, key=lambda c: statistics.fmean(dev_means(groups[c], choice)))
        for s in choice:
            p = scores(groups[planned], f"{s}.test")
            bst = scores(groups[best], f"{s}.test")
            st = scores(groups[base], f"{s}.test") if base else []
            d_best, _, v_best = gap(p, bst) if best != planned else (0.0, 0.0, "is the best")
            d_st, _, v_st = gap(p, st) if st else (float("nan"), 0.0, "-")
            table.append([f"{b:.2g}", s, fmt(p), f"`{best}` {fmt(bst)}", fmt(st), f"{untrained.get(s, float('nan')):.3f}",
                          f"{d_best:+.3f} ({v_best})", f"{d_st:+.3f} ({v_st})",
                          "yes" if d_best >= -0.01 else "no", "yes" if d_st >= 0.03 else "no",
                          "yes" if statistics.fmean(p) >= untrained.get(s, float("-inf")) else "no"])
    cols = ["budget", "test set", "planned", "best cell by dev", "ST-defaults script", "untrained", "planned − best",
            "planned − ST", "within 0.01 of best", "≥ +0.03 over ST", "≥ untrained"]
    return ["## Targets at a glance (test parts, mean ± std over seeds)", "", C.table(cols, table), ""] if table else []


def fit_section(rows: list[dict[str, Any]], work: Path) -> list[str]:
    """``st-recipe fit`` on the seed-0 grid cells (held-out InfoNCE against budget, per method), with its plot."""
    sweep = work / "sweep"
    sweep.mkdir(parents=True, exist_ok=True)
    best: dict[tuple[str, float], dict[str, Any]] = {}
    for r in rows:
        if r["seed"] != 0 or r["baseline"] or r["budget"] == 0 or r.get("heldout_after") is None or r["levers"]:
            continue
        key = (r["method"], r["budget"])
        if key not in best or r["heldout_after"] < best[key]["heldout_after"]:
            best[key] = r
    lines = [json.dumps({"cell": r["name"], "budget": r["budget"], "model": "SmolLM2-135M-Instruct",
                         "method": r["method"], "config": r["config"], "n_params": r["n_params"],
                         "pairs": r["pairs_seen"], "heldout_loss": r["heldout_after"]}) for r in best.values()]
    (sweep / "results.jsonl").write_text("\n".join(lines) + "\n")
    law, plot = C.RESULTS / "frontier_fitted.yaml", C.RESULTS / "frontier.png"
    for f in (law, plot):
        f.unlink(missing_ok=True)
    exe = Path(sys.executable).with_name("st-recipe")
    res = subprocess.run([str(exe), "fit", str(sweep), "--out", str(law), "--plot", str(plot)], capture_output=True,
                         text=True)
    out = ["## The fitted frontier (`st-recipe fit`)", "",
           "Per method and budget, the seed-0 cell (no lever) with the lowest held-out InfoNCE (st-recipe's own "
           "held-out pairs) over the LRs and LoRA scalings tried, i.e. the best each method reached at that budget, "
           "fitted against budget by `st-recipe fit` (log-log law per method, frontier and crossovers); "
           "law in `frontier_fitted.yaml`, plot `frontier.png`.", "", "```", (res.stdout + res.stderr).strip().replace(str(C.REPO) + "/", ""), "```", ""]
    return out


def quality_plot(rows: list[dict[str, Any]], sets: list[str], path: Path, metrics: dict[str, str]) -> None:
    """Test score against budget: planned default, best cell by dev, ST baseline; untrained as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = sorted({r["budget"] for r in rows if r["budget"] > 0})
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.6), squeeze=False)
    for ax, s in zip(axes[0], sets):
        for label, pick in (("planned default", lambda rs: is_planned(rs[0])),
                            ("ST defaults baseline", lambda rs: rs[0]["baseline"])):
            xs, ys, es = [], [], []
            for b in budgets:
                for rs in grouped(rows, b).values():
                    if pick(rs) and scores(rs, f"{s}.test"):
                        m, sd = mean_std(scores(rs, f"{s}.test"))
                        xs.append(b), ys.append(m), es.append(sd)
            if xs:
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label)
        xs, ys = [], []
        for b in budgets:
            gs = {c: rs for c, rs in grouped(rows, b).items() if not rs[0]["baseline"]}
            if gs:
                choice = [t for t in CHOICE_SETS if t in sets] or sets
                best = max(gs, key=lambda c: statistics.fmean(v for t in choice for v in scores(gs[c], f"{t}.dev")))
                xs.append(b), ys.append(statistics.fmean(scores(gs[best], f"{s}.test")))
        ax.plot(xs, ys, "s--", label="best cell by dev")
        base = [r for r in rows if r["config"] == "untrained"]
        if base and f"{s}.test" in base[0]["scores"]:
            ax.axhline(base[0]["scores"][f"{s}.test"], color="grey", ls=":", label="untrained")
        ax.set_xscale("log"), ax.set_xlabel("training FLOPs"), ax.set_ylabel(f"{s} test ({metrics.get(s, 'score')})"), ax.set_title(s)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(bench: Any) -> Path:
    """Write ``bench/results/frontier.md`` (and the plots) from the finished rows."""
    rows = bench.rows
    sets = present_sets([r for r in rows])
    base = next((r for r in rows if r["config"] == "untrained"), None)
    untrained = {s: base["scores"][f"{s}.test"] for s in sets} if base else {}
    trained = [r for r in rows if r["config"] != "untrained"]
    done = {b: len([r for r in trained if r["budget"] == b]) for b in sorted({r["budget"] for r in trained})}
    status = ("**Status**: " + ", ".join(f"{n} runs at {b:.2g} FLOP" for b, n in done.items()) +
              ". The grid is resumable and runs cheapest answers first (LR scan, then seeds, then the hand-written "
              "baseline, then LoRA / freezing / Propulsion / levers, then the largest budget); what is missing below "
              "has not run yet, it was not dropped.")
    lines = [intro(bench, sets), "", status, ""]
    if base:
        lines += ["Untrained (mean pooling): " + ", ".join(
            f"{s} dev {base['scores'][f'{s}.dev']:.3f} / test {base['scores'][f'{s}.test']:.3f}" for s in sets), ""]
    lines += summary_table(trained, sets, untrained)
    for budget in sorted({r["budget"] for r in trained}):
        lines += budget_section(trained, budget, sets, untrained)
    if sets:
        quality_plot(rows, sets, C.RESULTS / "frontier_quality.png",
                     {n: s["metric"] for n, s in bench.sets.items()})
        lines += ["![test score against budget](frontier_quality.png)", ""]
    lines += fit_section(trained, bench.work)
    body = "\n".join(lines)
    return C.write_result("frontier", "Real-model frontier (SmolLM2-135M; Lee, newsgroups, polarity, SimLex)", body, quick=False)


def intro(bench: Any, sets: list[str]) -> str:
    """Setup: model, data, evaluation sets and their splits, the commands."""
    m = bench.manifest
    sizes = "; ".join(f"`{n}` ({s['kind']}): dev {len(s['dev'])} / test {len(s['test'])} pairs"
                      for n, s in bench.sets.items())
    return "\n".join([
        "Every cell is `st-recipe train --budget B --model <SmolLM2-135M-Instruct folder> --data <Lee pairs> "
        "--batch-size 16 --seed S` plus the cell's one change (method, `--lr` = scale × the borrowed rule's LR, the "
        "nearest Pythia's pretraining LR / 10 = 6e-5 here; LoRA alpha; a lever); `planned` is today's plain command "
        "with no other flag (the LR scale in `recipes/defaults.yaml`, now 1), `earlier default` a cell that was the "
        "plain command when it ran (scale 2, until the second model, `frontier_gemma3-270m.md`, showed it unsafe). "
        f"Model: `{m['model']['package']}` (de-quantized GGUF, Llama architecture, "
        f"{m['model']['params']:,} parameters). Training: {m['pairs']['pairs']:,} two-sentence span pairs of the Lee "
        "background news articles (gensim test data); no training text equals an evaluation text (checked by the bench).",
        "",
        f"Evaluation sets (real, human-labelled, from gensim's test data): {sizes}. Lee (Lee, Pincombe & Welsh "
        "2005: 50 news articles, every pair rated by humans) is split by article (25 / 25, only pairs within a half); "
        "the newsgroups and polarity sets (posts labelled by the group they were posted to; Pang & Lee movie-review "
        "snippets labelled by polarity) are split with equal labels per half and scored by the AUC of cosine "
        "similarity for same-label pairs; SimLex-999 (word pairs rated by humans) by pair. Cells are ranked and chosen "
        "on the **mean dev score of Lee and newsgroups** (the two sets an untrained model scores above chance); "
        "polarity and SimLex are reported as transfer checks. Test columns are reported, never chosen on. "
        "`mean ± std (n seeds)`; a gap is called real only when it exceeds the larger std of the two cells.",
        "",
        "A second real model, Gemma 3 270M, ran the planned default, the LR scales and the ST-defaults script at "
        "6e12 (`bench/results/frontier_gemma3-270m.md`): the LR scale 2 chosen here left it worse than untrained, and "
        "the default went back to 1x.",
        "",
        "Reproduce: `python bench/frontier.py` (resumable; each finished cell is a line of "
        "`bench/results/frontier.jsonl`), `python bench/frontier.py --report-only` for this file.",
    ])
