"""Publish a finished run dir to the Hugging Face Hub: model card, MTEB model-index and metadata, one commit.

What goes up is an allowlist staged into a temporary folder: the sentence-transformers model files of the
run (merged weights, configs, tokenizer), a card rendered from ``model_cards/model_card.md.j2``, the
training-loss plot, the evaluation summary with an mteb ``ModelMeta`` beside it, and a copy of
``st_recipe.json`` with local paths removed. Anything else in the run dir is an error that names the file,
so nothing private rides along by accident. ``dry_run`` writes exactly the staged folder and uploads nothing.

A run is published with its MTEB scores: without an eval summary holding at least one scored task it is
refused unless ``no_scores`` is given. Failed tasks appear in the card as one short line each.

The published ``st_recipe.json`` names the run it came from under ``source_run``: a hash of the run's own
``st_recipe.json`` and the content revision of its model files (the revision ``st-recipe eval`` files
scores under). That is how a dry-run folder is recognised as an earlier dry run *of the same run*: its
files are all ones publish writes and its ``st_recipe.json`` carries the same ``source_run``. Only such a
folder may be replaced, and only with ``overwrite``; any other non-empty folder is refused (an empty one is
used). The dry run is written to a temporary sibling folder and renamed into place at the end.

The access token comes from the argument, ``HF_TOKEN`` or the huggingface_hub login. It is handed to the
client and nowhere else: no file, card, log line or error message holds it.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import json
import math
import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from st_recipe._files import replace_dir, save_figure
from st_recipe._text import public, public_text
from st_recipe.data import recorded_hub_id
from st_recipe.errors import StRecipeError
from st_recipe.run import RUN_RECORD, read_run

CARD_FILE = "README.md"
RESULTS_FILE = "eval_results.json"
META_FILE = "mteb_model_meta.json"
LOSS_PLOT = "assets/training_loss.png"
FRONTIER_PLOT = "assets/frontier.png"
TEMPLATE = "model_card.md.j2"

# Files copied from the run dir when present (patterns match whole path segments; "*" never crosses "/").
# Weights are safetensors only: a pickle could run code on the loader's machine.
MODEL_PATTERNS: tuple[str, ...] = (
    "*.safetensors",
    "model.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "*_Pooling/config.json",
    "*_Normalize/config.json",
    "*_Dense/config.json",
    "*_Dense/model.safetensors",
)
# What publish writes itself (the card, plots, results, metadata and the cleaned run record).
GENERATED_PATTERNS: tuple[str, ...] = (CARD_FILE, RUN_RECORD, RESULTS_FILE, META_FILE, "assets/*.png")
# Left in a run dir by st-recipe itself (an earlier card, eval's summary and result cache): tolerated,
# never copied as they are; the summary is re-read as the default results.
TOLERATED_PATTERNS: tuple[str, ...] = (CARD_FILE, RESULTS_FILE, "mteb_results/**")
REQUIRED_FILES: tuple[str, ...] = ("modules.json", "config.json", "sentence_bert_config.json")
ADAPTER_PATTERNS: tuple[str, ...] = ("adapter_config.json", "adapter_model.*", "**/adapter_config.json", "**/adapter_model.*")

_REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
# First path segments the Hub routes itself (huggingface.co/datasets/x is a dataset), never an owner's name.
_RESERVED_OWNERS = frozenset({"datasets", "spaces", "models", "api", "docs", "new", "settings", "organizations"})
_SHORT_FAILURE = 80
# An absolute local path inside free text (a POSIX or home path not preceded by a URL's "//", or a drive path).
_EMBEDDING_NAMES = ("embed_in.", "embed_tokens.", "wte.", "word_embeddings.", "embed_out.", "lm_head.")


@dataclass
class PublishResult:
    """What a publish did: the repo, the commit (None for a dry run) and the files it holds."""

    repo_id: str
    files: list[str]
    private: bool = False
    commit: str | None = None
    commit_url: str | None = None
    url: str | None = None
    dry_run: Path | None = None
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.dry_run is not None:
            return f"dry run: wrote {len(self.files)} files for {self.repo_id} to {self.dry_run}; nothing uploaded"
        where = " (private)" if self.private else ""
        return f"published {self.repo_id}{where} at commit {(self.commit or '?')[:12]}: {self.url}"


# ----------------------------------------------------------------------------------------- checks


def validate_repo_id(repo_id: Any) -> str:
    """``ORG/NAME`` with the Hub's character rules, or a one-line error."""
    if repo_id is not None and not isinstance(repo_id, str):
        raise StRecipeError(f"repo id must be text like ORG/NAME, not {type(repo_id).__name__}")
    if not repo_id or not repo_id.strip():
        raise StRecipeError("repo id is empty: pass --repo ORG/NAME")
    parts = repo_id.split("/")
    problem = None
    if len(parts) != 2:
        problem = "it must be exactly ORG/NAME (one '/')"
    elif not all(parts):
        problem = "the owner and the name must both be non-empty"
    # fullmatch: a "$" anchor would let a trailing newline through.
    elif not all(_REPO_PART.fullmatch(p) for p in parts):
        problem = ("each part may use only ASCII letters, digits, '-', '_' and '.', "
                   "and must start and end with a letter or digit")
    elif any("--" in p or ".." in p for p in parts):
        problem = "'--' and '..' are not allowed"
    elif any(len(p) > 96 for p in parts):
        problem = "each part may be at most 96 characters"
    elif parts[1].lower().endswith(".git"):
        problem = "the name cannot end in '.git'"
    elif parts[0].lower() in _RESERVED_OWNERS:
        problem = f"{parts[0]!r} is a Hub address, not an owner (did you mean ORG/NAME?)"
    if problem:
        raise StRecipeError(f"invalid repo id {repo_id!r}: {problem}")
    return repo_id


def _matches(rel: str, pattern: str) -> bool:
    """Segment-wise glob: ``*`` stays inside one folder, a ``**`` segment matches any number of folders."""
    parts, pats = rel.split("/"), pattern.split("/")

    def walk(i: int, j: int) -> bool:
        if j == len(pats):
            return i == len(parts)
        if pats[j] == "**":
            return any(walk(k, j + 1) for k in range(i, len(parts) + 1))
        return i < len(parts) and fnmatch.fnmatchcase(parts[i], pats[j]) and walk(i + 1, j + 1)

    return walk(0, 0)


def _any(rel: str, patterns: tuple[str, ...]) -> bool:
    return any(_matches(rel, p) for p in patterns)


def _list_files(root: Path) -> list[str]:
    """Every file and link under ``root`` as a relative POSIX path (hidden ones included)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        # A link to a folder is not walked into (it could lead anywhere): it is reported as an entry.
        for name in sorted(filenames + [d for d in dirnames if (base / d).is_symlink()]):
            out.append((base / name).relative_to(root).as_posix())
    return sorted(out)


def _name_files(files: list[str], limit: int = 6) -> str:
    shown = ", ".join(files[:limit])
    return shown + (f" and {len(files) - limit} more" if len(files) > limit else "")


def check_run_files(run: Path) -> list[str]:
    """The model files of a run dir to publish; one-line errors for adapters, strays and missing pieces."""
    files = _list_files(run)
    adapters = [f for f in files if _any(f, ADAPTER_PATTERNS)]
    if adapters:
        raise StRecipeError(
            f"run dir {str(run)!r} holds an unmerged adapter ({_name_files(adapters)}): publish merged weights only "
            "(st-recipe train merges them; an adapter folder records a local base path and needs peft to load)"
        )
    links = [f for f in files if (run / f).is_symlink()]
    if links:
        raise StRecipeError(f"run dir {str(run)!r} holds symbolic links ({_name_files(links)}): publish real files only")
    stray = [f for f in files if f != RUN_RECORD and not _any(f, MODEL_PATTERNS) and not _any(f, TOLERATED_PATTERNS)]
    if stray:
        raise StRecipeError(
            f"run dir {str(run)!r} holds files publish does not upload: {_name_files(stray)}; "
            "move them out of the run dir (only the model, its configs and st-recipe's own files may be there)"
        )
    missing = [f for f in REQUIRED_FILES if f not in files]
    if not any(_matches(f, "*.safetensors") for f in files):
        missing.append("*.safetensors weights")
    if not any(f in files for f in ("tokenizer.json", "tokenizer_config.json")):
        missing.append("a tokenizer")
    if missing:
        raise StRecipeError(f"run dir {str(run)!r} is not a complete sentence-transformers model: missing {', '.join(missing)}")
    try:
        modules = json.loads((run / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StRecipeError(f"{str(run / 'modules.json')!r} is not valid JSON") from None
    custom = [str(m.get("type")) for m in modules if not str(m.get("type", "")).startswith("sentence_transformers.")]
    if custom:
        raise StRecipeError(
            f"run dir {str(run)!r} uses module types outside sentence-transformers ({', '.join(custom)}); "
            "loading them would need trust_remote_code, so they are not published"
        )
    return [f for f in files if _any(f, MODEL_PATTERNS)]


def _resolve_token(token: str | None) -> str:
    """The argument, else HF_TOKEN or the stored login (huggingface_hub.get_token reads both)."""
    if token:
        return token
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise StRecipeError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a dry run needs none)")
    return found


# ----------------------------------------------------------------------------------------- inputs


def load_results(path: Path) -> dict[str, Any]:
    """An eval summary JSON (tasks with main scores, optional base); one-line errors for anything else."""
    if not path.is_file():
        raise StRecipeError(f"results file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise StRecipeError(f"results file {str(path)!r} is not valid JSON") from None
    _check_summary(data, str(path))
    if isinstance(data.get("base"), dict):
        _check_summary(data["base"], f"{path} (base)")
    return data


def _check_summary(data: Any, where: str) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        raise StRecipeError(f"results file {where!r} is not an st-recipe eval summary (no 'tasks' list)")
    failed = data.get("failed")
    if failed is not None and (not isinstance(failed, list)
                               or not all(isinstance(f, dict) and isinstance(f.get("task"), str) for f in failed)):
        raise StRecipeError(f"results file {where!r}: 'failed' must be a list of entries naming a task")
    for i, row in enumerate(data["tasks"]):
        ok = isinstance(row, dict) and isinstance(row.get("task"), str) and isinstance(row.get("main_score_name"), str)
        score = row.get("main_score") if isinstance(row, dict) else None
        if not ok or not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
            raise StRecipeError(f"results file {where!r}: task entry {i + 1} needs task, main_score_name and a numeric main_score")


def _results_for(run: Path, results: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    if results is not None:
        return load_results(Path(results))
    default = run / RESULTS_FILE
    return load_results(default) if default.is_file() else None


# ----------------------------------------------------------------------------------------- cleaning


def _base_info(record: dict[str, Any]) -> dict[str, Any]:
    """Who the base model is, as honestly as the record allows: a Hub id, a local folder or random weights."""
    from st_recipe.catalog import get_spec

    model = record.get("model") or {}
    raw = str(model.get("model") or record.get("recipe", {}).get("model") or "")
    load_id = str(model.get("load_id") or raw)
    random_init = bool(record.get("random_init") or model.get("random_init") or raw.startswith("random:"))
    spec = None
    try:
        spec = get_spec(raw.removeprefix("random:") if random_init else load_id)
    except StRecipeError:
        pass
    if random_init:
        shape = spec.name if spec else raw.removeprefix("random:")
        return {"kind": "random", "hub_id": None, "display": f"randomly initialised {shape} (not pretrained)",
                "license": None, "family": spec.family if spec else None}
    if os.path.isabs(load_id) or load_id.startswith(("~", ".")) or os.path.isdir(load_id):
        name = Path(load_id).name or "model"
        return {"kind": "local", "hub_id": None, "display": f"a local model folder `{name}` (not on the Hub)",
                "license": None, "family": None}
    return {"kind": "hub", "hub_id": load_id, "display": load_id, "license": spec.license if spec else None,
            "family": spec.family if spec else ("pythia" if "pythia" in load_id.lower() else None)}


def _data_info(record: dict[str, Any]) -> dict[str, Any]:
    """The training data: a Hub dataset id to list in the card's metadata, or a description."""
    data = record.get("data") or {}
    source = str(data.get("source") or "builtin")
    pairs = data.get("train_pairs")
    if source.split(":")[0].lower() == "builtin":
        return {"hub_id": None, "kind": "builtin", "short": "st-recipe's built-in offline pairs", "description": (
            "st-recipe's built-in offline pairs (a fixed, versioned set shipped in the package: docstrings of the Python "
            "standard library and of st-recipe's dependencies, a docstring's summary sentence as the anchor, the rest of it "
            "as the positive); English technical prose, not a Hub dataset"),
            "pairs": pairs}
    hub = recorded_hub_id(source)
    if hub:
        link = f"[{source}](https://huggingface.co/datasets/{hub})"
        return {"hub_id": hub, "kind": "hub", "short": link, "description": f"the Hub dataset {link}",
                "pairs": pairs}
    name = Path(source).name or "pairs"
    return {"hub_id": None, "kind": "local", "short": f"a local file of pairs (`{name}`)",
            "description": f"a local file `{name}` of (anchor, positive) pairs, not published",
            "pairs": pairs}


# ----------------------------------------------------------------------------------------- model facts


def _safetensors_counts(paths: list[Path]) -> dict[str, int]:
    """Parameter and byte counts read from safetensors headers (no tensor is loaded)."""
    total = embedding = nbytes = 0
    for path in paths:
        with path.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            n = math.prod(info.get("shape") or [1])
            total += n
            nbytes += int(info["data_offsets"][1]) - int(info["data_offsets"][0])
            if any(part in name for part in _EMBEDDING_NAMES):
                embedding += n
    return {"n_parameters": total, "n_embedding_parameters": embedding, "bytes": nbytes}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _model_facts(run: Path, files: list[str]) -> dict[str, Any]:
    """Embedding size, sequence length, similarity function and parameter counts from the saved files."""
    facts: dict[str, Any] = _safetensors_counts([run / f for f in files if f.endswith(".safetensors")])
    # sentence-transformers 6 keeps the sequence limit in the tokenizer config; older folders in sentence_bert_config.
    limit = _read_json(run / "sentence_bert_config.json").get("max_seq_length")
    if limit is None:
        limit = _read_json(run / "tokenizer_config.json").get("model_max_length")
    facts["max_seq_length"] = int(limit) if isinstance(limit, (int, float)) and 0 < limit < 1e7 else None
    facts["similarity_fn_name"] = _read_json(run / "config_sentence_transformers.json").get("similarity_fn_name") or "cosine"
    dim = None
    pooling_mode = None
    modules = json.loads((run / "modules.json").read_text(encoding="utf-8"))
    for module in modules:
        cfg = _read_json(run / str(module.get("path", "")) / "config.json") if module.get("path") else {}
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind == "Pooling":
            dim = cfg.get("embedding_dimension") or cfg.get("word_embedding_dimension") or dim
            pooling_mode = next((k.removeprefix("pooling_mode_").removesuffix("_tokens") for k, v in cfg.items()
                                 if k.startswith("pooling_mode_") and v is True), cfg.get("pooling_mode"))
        elif kind == "Dense":
            dim = cfg.get("out_features") or dim
    facts["embed_dim"] = dim or _read_json(run / "config.json").get("hidden_size")
    facts["pooling"] = pooling_mode
    facts["normalize"] = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    facts["model_type"] = _read_json(run / "config.json").get("model_type")
    return facts


# ----------------------------------------------------------------------------------------- card pieces


def _fmt_flops(value: Any) -> str:
    from st_recipe.flops import format_flops

    return format_flops(float(value)) if isinstance(value, (int, float)) else "-"


def _recipe_rows(recipe: dict[str, Any]) -> list[dict[str, str]]:
    """One row per recipe field: the value as shown in the card and its provenance."""
    prov = recipe.get("provenance") or {}
    rows = []
    for name, value in recipe.items():
        if name == "provenance":
            continue
        if name == "budget" and isinstance(value, (int, float)):
            shown = f"{_fmt_flops(value)} FLOP"
        elif isinstance(value, (dict, list)):
            shown = json.dumps(value, sort_keys=True)
        else:
            shown = "-" if value is None else str(value)
        p = prov.get(name) or {}
        rows.append({"field": name, "value": shown, "source": str(p.get("source", "user")), "note": str(p.get("note", ""))})
    return rows


def _mteb_task_info(names: list[str]) -> dict[str, dict[str, Any]]:
    """Hub dataset path and revision of each mteb task (from mteb's own metadata when mteb is installed)."""
    out: dict[str, dict[str, Any]] = {}
    try:
        import mteb
    except ImportError:
        return out
    for name in names:
        try:
            dataset = mteb.get_task(name).metadata.dataset or {}
        except Exception:  # noqa: BLE001 -- an unknown or renamed task just falls back to the mteb/<task> naming
            continue
        out[name] = {"path": dataset.get("path"), "revision": dataset.get("revision")}
    return out


def _eval_results(summary: dict[str, Any] | None) -> list[Any]:
    """``EvalResult`` entries (one per mteb task's main score) for the card's model-index."""
    from huggingface_hub import EvalResult

    if not summary:
        return []
    rows = [r for r in summary["tasks"] if r.get("source", "mteb") != "local"]
    info = _mteb_task_info([r["task"] for r in rows])
    results = []
    for row in rows:
        task = row["task"]
        subsets = [s for s in (row.get("subsets") or []) if s != "default"]
        meta = info.get(task, {})
        results.append(EvalResult(
            task_type=str(row.get("type") or "Unknown"),
            dataset_type=str(meta.get("path") or f"mteb/{task}"),
            dataset_name=f"MTEB {task}",
            dataset_config=subsets[0] if len(subsets) == 1 else None,
            dataset_split=row.get("split") or None,
            dataset_revision=meta.get("revision"),
            metric_type=row["main_score_name"],
            metric_value=float(row["main_score"]),
        ))
    return results


def _score_table(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The card's MTEB table: per-task scores, the base model's and the difference, and their means."""
    if not summary:
        return None

    def fmt(x: float | None, sign: str = "") -> str:
        return "-" if x is None else f"{x:{sign}.4f}"

    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    base = summary.get("base") if isinstance(summary.get("base"), dict) else None
    base_scores = {r["task"]: float(r["main_score"]) for r in (base or {}).get("tasks", [])}
    mine = {r["task"]: float(r["main_score"]) for r in summary["tasks"]}
    rows = []
    for r in summary["tasks"]:
        b = base_scores.get(r["task"])
        rows.append({"task": r["task"], "type": r.get("type") or "-", "metric": r["main_score_name"],
                     "score": fmt(mine[r["task"]]), "base": fmt(b), "diff": fmt(None if b is None else mine[r["task"]] - b, "+"),
                     "local": r.get("source") == "local"})
    # The comparison mean covers only tasks both models have, so a task the base missed cannot inflate it.
    common = [t for t in base_scores if t in mine]
    mine_common, base_common = mean([mine[t] for t in common]), mean([base_scores[t] for t in common])
    return {
        "rows": rows,
        "has_base": base is not None,
        "base_name": (base or {}).get("model_name"),
        "mean": fmt(mean(list(mine.values()))),
        "common_mean": fmt(mine_common),
        "base_mean": fmt(base_common),
        "mean_diff": fmt(None if mine_common is None or base_common is None else mine_common - base_common, "+"),
        "failed": [_failure_line(f, f["task"] in mine) for f in summary.get("failed") or []],
        "model_name": summary.get("model_name"),
        "revision": summary.get("revision"),
        "any_local": any(r.get("source") == "local" for r in summary["tasks"]),
    }


def _failure_line(item: dict[str, Any], has_score: bool) -> str:
    """One short line for a failed task: its name, the gist of the error, and whether an earlier score stands."""
    error = " ".join(str(item.get("error") or "failed").split())
    # eval's messages put the gist first and details in parentheses or after a ";".
    gist = re.split(r" \(|; ", error, maxsplit=1)[0]
    if len(gist) > _SHORT_FAILURE:
        gist = gist[: _SHORT_FAILURE - 3].rstrip() + "..."
    tail = "an earlier score is shown above" if has_score else "no score"
    return f"{item['task']}: {gist} ({tail})"


def _plot_loss(losses: list[float], path: Path) -> bool:
    """The per-step training loss as a PNG; False when matplotlib is missing or there is nothing to draw."""
    if not losses:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    ax.plot(range(1, len(losses) + 1), losses, color="#1f77b4", linewidth=1.4)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("symmetric InfoNCE loss")
    ax.set_title("Training loss")
    ax.grid(alpha=0.3)
    save_figure(fig, path)
    return True


def _frontier(law: Any, record: dict[str, Any], path: Path) -> dict[str, Any]:
    """Where this model sits against a fitted frontier (held-out loss at its budget), plus a plot when possible."""
    budget = float(record["flops"]["budget"])
    after = (record.get("heldout") or {}).get("after") or {}
    loss = after.get("infonce")
    method = (record.get("method") or {}).get("name")
    best = law.method_for(budget)
    info: dict[str, Any] = {
        "budget": _fmt_flops(budget),
        "best_method": best,
        "predicted": f"{law.loss(best, budget):.4f}",
        "own_predicted": f"{law.loss(method, budget):.4f}" if method in law.methods else None,
        "loss": f"{loss:.4f}" if isinstance(loss, (int, float)) else None,
        "ratio": f"{loss / law.loss(best, budget):.3f}" if isinstance(loss, (int, float)) else None,
        "method": method,
        "source": public_text(law.describe()),
        "plot": None,
    }
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return info
    budgets = [b for f in law.methods.values() for b, _ in f.points] + [budget]
    lo, hi = math.log10(min(budgets)) - 0.3, math.log10(max(budgets)) + 0.3
    grid = [10 ** (lo + i * (hi - lo) / 100) for i in range(101)]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for name in sorted(law.methods):
        ax.plot(grid, [law.loss(name, c) for c in grid], linewidth=1.2, alpha=0.8, label=f"{name} (fitted)")
    ax.plot(grid, [min(law.loss(m, c) for m in law.methods) for c in grid], color="black", linewidth=2.4,
            alpha=0.7, label="frontier", zorder=0)
    if isinstance(loss, (int, float)) and loss > 0:
        ax.scatter([budget], [loss], marker="*", s=180, color="crimson", edgecolor="black", zorder=5,
                   label=f"this model ({method})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training budget (FLOP)")
    ax.set_ylabel("held-out contrastive loss")
    ax.set_title("This model against the fitted frontier")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    info["plot"] = FRONTIER_PLOT
    return info


def template_path() -> Path:
    """The card template (``model_cards/`` in a checkout, package data when installed)."""
    here = Path(__file__).resolve().parent.parent / "model_cards"
    if (here / TEMPLATE).is_file():
        return here / TEMPLATE
    return Path(str(resources.files("st_recipe") / "_model_cards")) / TEMPLATE


def _md_cell(value: Any) -> str:
    """A value made safe for one Markdown table cell."""
    return " ".join(str(value).split()).replace("|", "\\|") if value is not None else ""


def _card_data(repo_id: str, base: dict[str, Any], data: dict[str, Any], method: str, facts: dict[str, Any],
               evals: list[Any]) -> Any:
    """The card's front matter as ``ModelCardData`` (so the model-index is laid out the way the Hub parses it)."""
    from huggingface_hub import ModelCardData

    tags = ["st-recipe", "mteb", "sentence-transformers", "feature-extraction", "sentence-similarity", method]
    if base.get("family"):
        tags.append(base["family"])
    if facts.get("model_type") and facts["model_type"] not in tags:
        tags.append(str(facts["model_type"]))
    if base["kind"] == "random":
        tags.append("random-init")
    return ModelCardData(
        model_name=repo_id,
        base_model=base["hub_id"],
        license=base["license"],
        language=["en"],
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        datasets=[data["hub_id"]] if data["hub_id"] else None,
        tags=list(dict.fromkeys(tags)),
        eval_results=evals or None,
    )


def render_card(repo_id: str, record: dict[str, Any], summary: dict[str, Any] | None, facts: dict[str, Any], *,
                base: dict[str, Any], data: dict[str, Any], loss_plot: str | None = None,
                frontier: dict[str, Any] | None = None) -> str:
    """The model card (README.md): front matter from ``ModelCardData`` and a body from the Jinja2 template."""
    import jinja2
    from huggingface_hub import ModelCard

    method = record.get("method") or {}
    evals = _eval_results(summary)
    card_data = _card_data(repo_id, base, data, str(method.get("name", "unknown")), facts, evals)
    flops = record.get("flops") or {}
    hw = record.get("hardware") or {}
    hardware = f"{hw['gpus']} × {hw['gpu']}" if hw.get("gpu") else f"CPU ({hw.get('cpu_count', '?')} cores)"
    if (hw.get("world_size") or 1) > 1:
        hardware += f", {hw['world_size']} processes"
    params = method.get("params") or {}
    heldout = record.get("heldout") or {}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_path().parent)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["cell"] = _md_cell
    text = env.get_template(TEMPLATE).render(
        card_data=card_data.to_yaml(),
        repo_id=repo_id,
        name=repo_id.split("/")[1],
        base=base,
        data=data,
        method={"name": method.get("name", "unknown"), "args": json.dumps(method.get("args") or {}, sort_keys=True),
                "n_params": params.get("n_params"), "n_trainable": params.get("n_trainable"),
                "fraction": params.get("trainable_fraction"), "cost_formula": method.get("cost_formula")},
        recipe_rows=_recipe_rows(record.get("recipe") or {}),
        flops={"budget": _fmt_flops(flops.get("budget")), "planned": _fmt_flops(flops.get("planned")),
               "spent": _fmt_flops(flops.get("spent")), "paper_formula": _fmt_flops(flops.get("paper_formula")),
               "padded": _fmt_flops(flops.get("executed_with_padding")),
               "fraction": f"{float(flops.get('spent_fraction', 0)):.2%}", "stopped_by": flops.get("stopped_by") or "-",
               "not_counted": flops.get("not_counted")},
        run={"pairs": f"{int(record.get('pairs_seen') or 0):,}", "tokens": f"{int(record.get('tokens_seen') or 0):,}",
             "steps": record.get("steps"), "planned_steps": record.get("planned_steps"),
             "wall": f"{float(record.get('wall_time_s') or 0):,.1f} s", "hardware": hardware,
             "epochs": (record.get("data") or {}).get("epochs"), "seed": record.get("seed"),
             "final_loss": (record.get("loss") or {}).get("final"),
             "versions": ", ".join(f"{k} {v}" for k, v in (record.get("versions") or {}).items())},
        facts=facts,
        loss_plot=loss_plot,
        frontier=frontier,
        mteb=_score_table(summary),
        heldout={"before": heldout.get("before"), "after": heldout.get("after")},
        random_init=base["kind"] == "random",
        propulsion=method.get("name") == "propulsion",
        # Pythia is GPT-NeoX; a local or random base of that architecture is cited with it too.
        cite_pythia=base.get("family") == "pythia" or facts.get("model_type") == "gpt_neox",
    )
    card = ModelCard(text)
    # Parse it back as the Hub would: a model-index that does not survive the round trip is a bug here.
    if len(card.data.eval_results or []) != len(evals):
        raise StRecipeError("internal error: the card's model-index does not parse back")
    return text


# ----------------------------------------------------------------------------------------- metadata


def model_meta(repo_id: str, summary: dict[str, Any] | None, facts: dict[str, Any], *, base: dict[str, Any],
               data: dict[str, Any]) -> dict[str, Any]:
    """mteb ``ModelMeta`` fields for a leaderboard submission (validated by mteb when it is installed)."""
    fields: dict[str, Any] = {
        "name": repo_id,
        # Results are filed under this revision in the mteb cache; it must match for a submission.
        "revision": (summary or {}).get("revision"),
        "release_date": datetime.date.today().isoformat(),
        "languages": ["eng-Latn"],
        "n_parameters": facts["n_parameters"],
        "n_embedding_parameters": facts["n_embedding_parameters"],
        "memory_usage_mb": round(facts["bytes"] / 2**20, 2),
        "max_tokens": facts["max_seq_length"],
        "embed_dim": facts["embed_dim"],
        "license": base["license"] or "not specified",
        "open_weights": True,
        "public_training_code": None,
        "public_training_data": f"https://huggingface.co/datasets/{data['hub_id']}" if data["hub_id"] else None,
        "framework": ["Sentence Transformers", "PyTorch"],
        "reference": f"https://huggingface.co/{repo_id}",
        "similarity_fn_name": facts["similarity_fn_name"],
        "use_instructions": False,
        # The builtin pairs are Python docstrings, disjoint from every MTEB task; other data is not annotated.
        "training_datasets": [] if data["kind"] == "builtin" else None,
        "adapted_from": base["hub_id"],
    }
    try:
        from mteb.models import ModelMeta, SentenceTransformerEncoderWrapper
    except ImportError:
        return {**fields, "loader": "SentenceTransformerEncoderWrapper", "modalities": ["text"], "model_type": ["dense"]}
    try:
        meta = ModelMeta(loader=SentenceTransformerEncoderWrapper,
                         **{**fields, "training_datasets": None if fields["training_datasets"] is None else set()})
    except ValueError as exc:
        first = str(exc).strip().splitlines()
        raise StRecipeError(f"mteb rejected the model metadata: {' '.join(first[:3])}") from None
    out = meta.to_dict()
    out["similarity_fn_name"] = getattr(out["similarity_fn_name"], "value", out["similarity_fn_name"])
    return out


# ----------------------------------------------------------------------------------------- staging


def _place(src: Path, dst: Path, *, link: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            # Staging for an upload only reads the files: a hard link saves copying gigabytes of weights.
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


def _stage(stage: Path, run: Path, files: list[str], record: dict[str, Any], summary: dict[str, Any] | None,
           repo_id: str, law: Any, identity: dict[str, str], *, link: bool) -> list[str]:
    """Fill ``stage`` with exactly what gets uploaded; returns its files."""
    for rel in files:
        _place(run / rel, stage / rel, link=link)
    # Who the base and the data are is decided on the raw record, before paths are cut from it.
    base, data = _base_info(record), _data_info(record)
    record_public = public(record)
    record_public["repo_id"] = repo_id
    record_public["source_run"] = identity
    facts = _model_facts(run, files)
    loss_plot = LOSS_PLOT if _plot_loss(list((record.get("loss") or {}).get("per_step") or []), stage / LOSS_PLOT) else None
    frontier = _frontier(law, record, stage / FRONTIER_PLOT) if law is not None else None
    summary_public = public(summary) if summary else None
    card = render_card(repo_id, record_public, summary_public, facts, base=base, data=data, loss_plot=loss_plot, frontier=frontier)
    (stage / CARD_FILE).write_text(card, encoding="utf-8")
    (stage / RUN_RECORD).write_text(json.dumps(record_public, indent=2) + "\n", encoding="utf-8")
    if summary_public:
        (stage / RESULTS_FILE).write_text(json.dumps(summary_public, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    meta = model_meta(repo_id, summary_public, facts, base=base, data=data)
    (stage / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    staged = _list_files(stage)
    outside = [f for f in staged if not _any(f, MODEL_PATTERNS) and not _any(f, GENERATED_PATTERNS)]
    if outside:
        raise StRecipeError(f"internal error: staged files outside the allowlist: {_name_files(outside)}")
    return staged


def _check_no_secret(stage: Path, files: list[str], token: str | None) -> None:
    """Refuse to upload a staged text file that holds the token (weights are not text and are skipped)."""
    if not token:
        return
    needle = token.encode()
    for rel in files:
        if rel.endswith((".safetensors", ".png")):
            continue
        if needle in (stage / rel).read_bytes():
            raise StRecipeError(f"staged file {rel!r} contains the access token; refusing to upload it")


def run_identity(run: Path) -> dict[str, str]:
    """What a run is known by in what publish writes: a hash of its st_recipe.json and its model files' revision."""
    from st_recipe.evaluate import folder_revision

    record = hashlib.sha256((run / RUN_RECORD).read_bytes()).hexdigest()[:16]
    return {"record_sha256": record, "model_revision": folder_revision(run)}


def _check_dry_target(target: Path, run: Path, identity: dict[str, str], *, overwrite: bool) -> None:
    """Refuse a dry-run folder that is not new, empty, or (with ``overwrite``) an earlier dry run of this run."""
    if target.resolve() == run.resolve() or run.resolve() in target.resolve().parents:
        raise StRecipeError(f"the dry-run folder {str(target)!r} must be outside the run dir")
    if target.exists() and not target.is_dir():
        raise StRecipeError(f"the dry-run folder {str(target)!r} is a file")
    present = _list_files(target) if target.is_dir() else []
    if not present:
        return
    # Anything but publish's own output of this very run may be someone's work (another run, a model).
    foreign = [f for f in present if not _any(f, MODEL_PATTERNS) and not _any(f, GENERATED_PATTERNS)]
    same_run = not foreign and _read_json(target / RUN_RECORD).get("source_run") == identity
    if not same_run:
        held = f" (it holds {_name_files(foreign)})" if foreign else ""
        raise StRecipeError(f"the dry-run folder {str(target)!r} is not empty and is not a dry run of this run{held}; "
                            "choose a new or empty folder")
    if not overwrite:
        raise StRecipeError(f"the dry-run folder {str(target)!r} holds an earlier dry run of this run; "
                            "pass --overwrite to replace it")


# ----------------------------------------------------------------------------------------- push


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport-level exception classes of the HTTP stacks huggingface_hub may use."""
    classes: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (("httpx2", "HTTPError"), ("httpx", "HTTPError"), ("requests", "RequestException")):
        try:
            classes.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(classes)


def _push_error(exc: BaseException, repo_id: str, token: str | None) -> StRecipeError:
    """One line naming the repo and the HTTP status (or the connection problem); never the token."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError

    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    http = next((e for e in chain if isinstance(e, HfHubHTTPError)), None)
    if http is not None:
        status = getattr(http.response, "status_code", None)
        detail = (http.server_message or str(http)).strip().splitlines()
        hint = {401: "the token was not accepted", 403: f"the token may not write to {repo_id.split('/')[0]!r}",
                404: "not found", 409: "conflict (the branch moved; try again)"}.get(status or 0, "")
        # The server's own words when it gave some (an LFS refusal is not a permissions problem); else a hint.
        reason = detail[0] if http.server_message and detail else hint
        message = f"publishing to {repo_id} failed: HTTP {status}" + (f" ({reason})" if reason else "")
    elif isinstance(exc, _network_errors()):
        message = f"publishing to {repo_id} failed: cannot reach {constants.ENDPOINT} ({type(exc).__name__}: {exc})"
    else:
        message = f"publishing to {repo_id} failed: {type(exc).__name__}: {exc}"
    return StRecipeError(message.replace(token, "***") if token else message)


def _http_errors() -> tuple[type[BaseException], ...]:
    """What a call to the Hub may raise that is the network's or the server's fault, not a bug here."""
    # RuntimeError: a failed LFS upload is re-raised as one, with the HTTP error as its cause.
    return (ValueError, RuntimeError, OSError) + _network_errors()


def _preflight(api: Any, repo_id: str, *, private: bool, revision: str | None) -> bool | None:
    """Read-only checks before anything is staged or created; the existing repo's visibility (None if new)."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    branch = revision if revision and revision != "main" else None
    try:
        info = api.model_info(repo_id, revision=branch)
    except RevisionNotFoundError:
        raise StRecipeError(f"{repo_id} has no branch {revision!r}: create it on the Hub first") from None
    except RepositoryNotFoundError:
        if branch:
            raise StRecipeError(f"{repo_id} does not exist yet, so it has no branch {revision!r}: publish to main first") from None
        return None
    except _http_errors() as exc:
        raise _push_error(exc, repo_id, api.token) from None
    if private and not info.private:
        raise StRecipeError(f"{repo_id} already exists and is public; --private only applies to a new repo "
                            "(make it private on the Hub first, or publish without --private)")
    return bool(info.private)


def _push(api: Any, stage: Path, repo_id: str, *, private: bool, revision: str | None, commit_message: str,
          description: str) -> tuple[Any, str]:
    """create_repo (idempotent) then one upload_folder commit; returns the commit info and the repo URL."""
    try:
        url = str(api.create_repo(repo_id, private=private, exist_ok=True))
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(stage),
            revision=revision,
            commit_message=commit_message,
            commit_description=description,
            # Files st-recipe manages that a previous publish left and this one no longer has (an old shard,
            # a dropped plot) go in the same commit; anything else in the repo is the owner's and stays.
            delete_patterns=list(MODEL_PATTERNS + GENERATED_PATTERNS),
        )
    except _http_errors() as exc:
        raise _push_error(exc, repo_id, api.token) from None
    return info, url


# ----------------------------------------------------------------------------------------- entry point


def publish(
    run_dir: str | os.PathLike[str],
    repo_id: str | None = None,
    *,
    private: bool = False,
    dry_run: str | os.PathLike[str] | None = None,
    results: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    allow_random: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    frontier: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    no_scores: bool = False,
) -> PublishResult:
    """Check, stage and push a finished run dir as ``repo_id`` in one commit (or write the folder for a dry run).

    ``no_scores`` allows a run without MTEB scores; ``overwrite`` lets a dry run replace an earlier dry run of
    the same run (see the module docstring for how one is recognised).
    """
    from st_recipe import __version__

    run = Path(run_dir)
    record = read_run(run).to_dict()
    repo = validate_repo_id(repo_id if repo_id is not None else (record.get("repo_id") or ""))
    files = check_run_files(run)
    if record.get("random_init") or (record.get("model") or {}).get("random_init"):
        if not allow_random:
            raise StRecipeError(f"run {str(run)!r} was trained from randomly initialised weights, not a pretrained model; "
                                "pass --allow-random to publish it anyway (the card will say so)")
    if overwrite and dry_run is None:
        raise StRecipeError("--overwrite only applies to --dry-run (a push replaces the repo's files by itself)")
    summary = _results_for(run, results)
    if summary is None or not summary["tasks"]:
        if not no_scores:
            why = (f"run {str(run)!r} has no MTEB scores (no {RESULTS_FILE})" if summary is None else
                   f"{str(results) if results is not None else str(run / RESULTS_FILE)!r} has no scored task (all failed)")
            raise StRecipeError(f"{why}: run `st-recipe eval {run}` first, or pass --no-scores to publish without them")
        # Failures alone are no result worth a card section or an uploaded summary.
        summary = None
    law = None
    if frontier is not None:
        from st_recipe.scaling import FittedLaw

        law = FittedLaw.load(frontier)
    secret = None if dry_run is not None else _resolve_token(token)
    if revision is not None and not revision.strip():
        raise StRecipeError("--revision must name a branch")

    notes: list[str] = []
    if summary is None:
        notes.append("no evaluation results (--no-scores): the card has no MTEB scores")
    elif summary.get("model_name") and summary["model_name"] != repo:
        notes.append(f"the results were filed as {summary['model_name']!r} in the mteb cache, not {repo!r}")
    identity = run_identity(run)
    if summary is not None and summary.get("revision") not in (None, identity["model_revision"]):
        notes.append(f"the results are for model revision {summary.get('revision')}, not this run's "
                     f"{identity['model_revision']} (re-run `st-recipe eval` if the weights changed)")

    if dry_run is not None:
        target = Path(dry_run)
        _check_dry_target(target, run, identity, overwrite=overwrite)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            staged = _stage(tmp, run, files, record, summary, repo, law, identity, link=False)
            _check_no_secret(tmp, staged, token or os.environ.get("HF_TOKEN"))
            replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return PublishResult(repo_id=repo, files=staged, private=private, dry_run=target, notes=notes)

    from huggingface_hub import HfApi

    api = HfApi(token=secret)
    # Reachability, the token, the branch and the visibility are checked before the (slower) staging.
    existing_private = _preflight(api, repo, private=private, revision=revision)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{run.name}.publish-", dir=run.parent))
    except OSError:
        stage = Path(tempfile.mkdtemp(prefix="st-recipe-publish-"))
    try:
        staged = _stage(stage, run, files, record, summary, repo, law, identity, link=True)
        _check_no_secret(stage, staged, secret)
        method = (record.get("method") or {}).get("name", "?")
        flops = record.get("flops") or {}
        message = commit_message or f"Publish {repo.split('/')[1]} ({method}, {_fmt_flops(flops.get('budget'))} FLOP) with st-recipe"
        description = (f"st-recipe {__version__}: {len(staged)} files; FLOPs spent {_fmt_flops(flops.get('spent'))} "
                       f"of {_fmt_flops(flops.get('budget'))}")
        info, url = _push(api, stage, repo, private=private, revision=revision, commit_message=message,
                          description=description)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    is_private = private if existing_private is None else existing_private
    return PublishResult(repo_id=repo, files=staged, private=is_private, commit=getattr(info, "oid", None),
                         commit_url=getattr(info, "commit_url", None), url=url, notes=notes)
