"""What goes up: the allowlist, the run files publish reads, and the folder it stages.

The upload is an allowlist staged into a temporary folder: the sentence-transformers model files of the run
(merged weights, configs, tokenizer) and what publish generates itself (card, plots, results, metadata, the
cleaned run record). Anything else in the run dir is an error that names the file, so nothing private rides
along by accident.

The published ``st_recipe.json`` names the run it came from under ``source_run`` (:func:`run_identity`): a
hash of the run's own ``st_recipe.json`` and the content revision of its model files (the revision
``st-recipe eval`` files scores under). That is how a dry-run folder is recognised as an earlier dry run *of
the same run*: its files are all ones publish writes and its ``st_recipe.json`` carries the same
``source_run``. Only such a folder may be replaced, and only with ``overwrite``; any other non-empty folder is
refused (an empty one is used). A dry run is staged in a temporary sibling folder and renamed into place.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from st_recipe._io import replace_dir
from st_recipe.errors import StRecipeError
from st_recipe.run import EVAL_SUMMARY, RUN_RECORD

CARD_FILE = "README.md"
RESULTS_FILE = EVAL_SUMMARY
META_FILE = "mteb_model_meta.json"
LOSS_PLOT = "assets/training_loss.png"
FRONTIER_PLOT = "assets/frontier.png"

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


# ----------------------------------------------------------------------------------------- listing


def matches(rel: str, pattern: str) -> bool:
    """Segment-wise glob: ``*`` stays inside one folder, a ``**`` segment matches any number of folders."""
    parts, pats = rel.split("/"), pattern.split("/")

    def walk(i: int, j: int) -> bool:
        if j == len(pats):
            return i == len(parts)
        if pats[j] == "**":
            return any(walk(k, j + 1) for k in range(i, len(parts) + 1))
        return i < len(parts) and fnmatch.fnmatchcase(parts[i], pats[j]) and walk(i + 1, j + 1)

    return walk(0, 0)


def matches_any(rel: str, patterns: tuple[str, ...]) -> bool:
    """True when ``rel`` matches one of ``patterns`` (see :func:`matches`)."""
    return any(matches(rel, p) for p in patterns)


def list_files(root: Path) -> list[str]:
    """Every file and link under ``root`` as a relative POSIX path (hidden ones included)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        # A link to a folder is not walked into (it could lead anywhere): it is reported as an entry.
        for name in sorted(filenames + [d for d in dirnames if (base / d).is_symlink()]):
            out.append((base / name).relative_to(root).as_posix())
    return sorted(out)


def name_files(files: list[str], limit: int = 6) -> str:
    """The first ``limit`` names, comma-separated, and how many more there are."""
    shown = ", ".join(files[:limit])
    return shown + (f" and {len(files) - limit} more" if len(files) > limit else "")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or ``{}`` when it is missing, unreadable or not an object (configs are optional)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


# ----------------------------------------------------------------------------------------- the run's files


def check_run_files(run: Path) -> list[str]:
    """The model files of a run dir to publish; one-line errors for adapters, strays and missing pieces."""
    files = list_files(run)
    adapters = [f for f in files if matches_any(f, ADAPTER_PATTERNS)]
    if adapters:
        raise StRecipeError(
            f"run dir {str(run)!r} holds an unmerged adapter ({name_files(adapters)}): publish merged weights only "
            "(st-recipe train merges them; an adapter folder records a local base path and needs peft to load)"
        )
    links = [f for f in files if (run / f).is_symlink()]
    if links:
        raise StRecipeError(f"run dir {str(run)!r} holds symbolic links ({name_files(links)}): publish real files only")
    stray = [f for f in files
             if f != RUN_RECORD and not matches_any(f, MODEL_PATTERNS) and not matches_any(f, TOLERATED_PATTERNS)]
    if stray:
        raise StRecipeError(
            f"run dir {str(run)!r} holds files publish does not upload: {name_files(stray)}; "
            "move them out of the run dir (only the model, its configs and st-recipe's own files may be there)"
        )
    missing = [f for f in REQUIRED_FILES if f not in files]
    if not any(matches(f, "*.safetensors") for f in files):
        missing.append("*.safetensors weights")
    if not any(f in files for f in ("tokenizer.json", "tokenizer_config.json")):
        missing.append("a tokenizer")
    if missing:
        raise StRecipeError(f"run dir {str(run)!r} is not a complete sentence-transformers model: missing {', '.join(missing)}")
    try:
        modules = json.loads((run / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        raise StRecipeError(f"{str(run / 'modules.json')!r} is not valid JSON") from None
    custom = [str(m.get("type")) for m in modules if not str(m.get("type", "")).startswith("sentence_transformers.")]
    if custom:
        raise StRecipeError(
            f"run dir {str(run)!r} uses module types outside sentence-transformers ({', '.join(custom)}); "
            "loading them would need trust_remote_code, so they are not published"
        )
    return [f for f in files if matches_any(f, MODEL_PATTERNS)]


def run_identity(run: Path) -> dict[str, str]:
    """What a run is known by in what publish writes: a hash of its st_recipe.json and its model files' revision."""
    from st_recipe.evaluation import folder_revision

    record = hashlib.sha256((run / RUN_RECORD).read_bytes()).hexdigest()[:16]
    return {"record_sha256": record, "model_revision": folder_revision(run)}


# ----------------------------------------------------------------------------------------- eval summary


def load_results(path: Path) -> dict[str, Any]:
    """An eval summary JSON (tasks with main scores, optional base); one-line errors for anything else."""
    if not path.is_file():
        raise StRecipeError(f"results file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
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


def results_for(run: Path, results: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The summary given, else the run dir's own ``eval_results.json`` when there is one, else None."""
    if results is not None:
        return load_results(Path(results))
    default = run / RESULTS_FILE
    return load_results(default) if default.is_file() else None


# ----------------------------------------------------------------------------------------- staging


def place(src: Path, dst: Path, *, link: bool) -> None:
    """Copy ``src`` to ``dst`` (a hard link when ``link`` and the file system allows)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            # Staging for an upload only reads the files: a hard link saves copying gigabytes of weights.
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


def check_allowlist(stage: Path) -> list[str]:
    """The staged files; an internal error when one is outside the allowlist."""
    staged = list_files(stage)
    outside = [f for f in staged if not matches_any(f, MODEL_PATTERNS) and not matches_any(f, GENERATED_PATTERNS)]
    if outside:
        raise StRecipeError(f"internal error: staged files outside the allowlist: {name_files(outside)}")
    return staged


@contextmanager
def staging_folder(parent: Path, prefix: str, *, anywhere: bool = False) -> Iterator[Path]:
    """A new temporary folder in ``parent``, removed when the block ends unless it was renamed away.

    ``anywhere``: fall back to the system's temporary folder when ``parent`` is not writable (an upload
    folder need not sit beside anything; a dry run must, to be renamed into place).
    """
    try:
        stage = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    except OSError:
        if not anywhere:
            raise
        stage = Path(tempfile.mkdtemp(prefix="st-recipe-publish-"))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def move_into_place(stage: Path, target: Path) -> None:
    """Give a finished staged folder the user's umask (``mkdtemp`` made it 0700) and rename it to ``target``."""
    from st_recipe.encoder import apply_umask

    apply_umask(stage)
    replace_dir(stage, target)


def check_dry_target(target: Path, run: Path, identity: dict[str, str], *, overwrite: bool) -> None:
    """Refuse a dry-run folder that is not new, empty, or (with ``overwrite``) an earlier dry run of this run."""
    if target.resolve() == run.resolve() or run.resolve() in target.resolve().parents:
        raise StRecipeError(f"the dry-run folder {str(target)!r} must be outside the run dir")
    from st_recipe.outputs import check_can_create, check_folder

    check_folder(target, "the dry-run folder")
    check_can_create(target, "the dry-run folder")  # staged beside it, then renamed into place
    present = list_files(target) if target.is_dir() else []
    if not present:
        return
    # Anything but publish's own output of this very run may be someone's work (another run, a model).
    foreign = [f for f in present if not matches_any(f, MODEL_PATTERNS) and not matches_any(f, GENERATED_PATTERNS)]
    same_run = not foreign and read_json(target / RUN_RECORD).get("source_run") == identity
    if not same_run:
        held = f" (it holds {name_files(foreign)})" if foreign else ""
        raise StRecipeError(f"the dry-run folder {str(target)!r} is not empty and is not a dry run of this run{held}; "
                            "choose a new or empty folder")
    if not overwrite:
        raise StRecipeError(f"the dry-run folder {str(target)!r} holds an earlier dry run of this run; "
                            "pass --overwrite to replace it")
