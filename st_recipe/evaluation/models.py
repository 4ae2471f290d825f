"""The model to evaluate and the identity its results are filed under (mteb name + revision), and its base model.

A run dir is named by its record's ``repo_id`` (else ``st-recipe/<folder>``) at a hash of its model files;
a sentence-transformers folder is ``local/<folder>`` at that hash; a Hub id is itself at the commit the
Hub cache resolved; a base LM (``--compare-base``, or a plain HF folder or catalogue name) is named by
where it came from, evaluated mean-pooled as an experiment of that name.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st_recipe._text import slugify
from st_recipe.errors import StRecipeError
from st_recipe.hub.ids import is_repo_id
from st_recipe.models.args import ModelArg, classify_model, parse_model_spec
from st_recipe.run import EVAL_SUMMARY, MTEB_RESULTS, RUN_RECORD, RunDir, RunRecord

# Files and folders inside a model folder that are not part of the model (they change without the
# weights changing), so they stay out of its content hash.
_NOT_MODEL_FILES = {RUN_RECORD, EVAL_SUMMARY, "README.md", ".gitattributes"}
_NOT_MODEL_DIRS = {MTEB_RESULTS, "checkpoints", ".git", ".cache", "__pycache__"}


@dataclass
class LoadedModel:
    """A loaded encoder and the identity its results are filed under."""

    st_model: Any
    name: str
    revision: str
    run_dir: Path | None = None
    record: RunRecord | None = None
    experiment: dict[str, Any] | None = None
    adapted_from: str | None = None


def folder_revision(folder: str | os.PathLike[str]) -> str:
    """A content hash of a model folder's files (weights, configs, tokenizer), as an mteb revision string."""
    root = Path(folder)
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        # Skip results and checkpoints: they change while the model stays the same.
        dirnames[:] = sorted(d for d in dirnames if d not in _NOT_MODEL_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name in _NOT_MODEL_FILES or name.startswith("."):
                continue
            path = Path(dirpath) / name
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return "sha256-" + digest.hexdigest()[:16]


def _check_name(name: str) -> str:
    name = name.strip()
    if not is_repo_id(name):
        raise StRecipeError(f"model name {name!r} must look like 'org/name'")
    return name


def _hub_revision(repo_id: str, revision: str | None) -> str:
    """The commit the Hub cache resolved for ``repo_id`` (what was actually loaded)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True)).name
    except Exception:  # noqa: BLE001 -- any cache miss falls back to the name the user asked for
        return revision or "main"


def _load_st(source: str, revision: str | None = None) -> Any:
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(source, revision=revision)
    except Exception as exc:  # noqa: BLE001 -- any load failure is the user's input, shown in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StRecipeError(f"could not load {source!r} as a sentence-transformers model: {first}") from None


def load_model(model: Any, *, model_name: str | None = None) -> LoadedModel:
    """Load MODEL (run dir, ST folder, plain HF folder, Hub id[@revision], catalogue name or a SentenceTransformer)."""
    if not isinstance(model, (str, os.PathLike)):
        if not hasattr(model, "encode") or not hasattr(model, "model_card_data"):
            raise StRecipeError(f"model must be a path, a Hub id or a SentenceTransformer, not {type(model).__name__}")
        name = model_name or model.model_card_data.model_name or ""
        if "/" not in name:
            raise StRecipeError("pass model_name='org/name' to evaluate an in-memory model (results are filed under it)")
        return LoadedModel(model, _check_name(name), _state_revision(model))
    arg = classify_model(os.fspath(model), encoder=True)
    if arg.kind == "run":
        return _load_run(arg, model_name)
    if arg.kind == "sentence-transformers":
        folder = arg.path.resolve()  # type: ignore[union-attr]
        return LoadedModel(_load_st(str(folder)), _check_name(model_name or f"local/{slugify(folder.name)}"),
                           folder_revision(folder))
    if arg.kind == "transformers":
        return base_model(str(arg.path.resolve()), pooling="mean", max_seq_length=None,  # type: ignore[union-attr]
                          model_name=model_name)
    if arg.kind == "hub":
        st_model = _load_st(arg.repo, revision=arg.revision)  # type: ignore[arg-type]
        return LoadedModel(st_model, _check_name(model_name or arg.repo), _hub_revision(arg.repo, arg.revision))  # type: ignore[arg-type]
    return base_model(arg.given, pooling="mean", max_seq_length=None, model_name=model_name)


def _load_run(arg: ModelArg, model_name: str | None) -> LoadedModel:
    """A run dir, named by its record's repo id (else ``st-recipe/<folder>``), its base model kept for the card."""
    folder = arg.path.resolve()  # type: ignore[union-attr]
    record = RunDir(folder).read()
    repo_id = record.repo_id or record.recipe.get("repo_id")
    name = model_name or (repo_id if is_repo_id(repo_id) else None)
    name = name or f"st-recipe/{slugify(repo_id if isinstance(repo_id, str) and repo_id else folder.name)}"
    base = record.recipe.get("model")
    return LoadedModel(_load_st(str(folder)), _check_name(name), folder_revision(folder), folder, record,
                       adapted_from=_base_name(base) if isinstance(base, str) else None)


def _state_revision(st_model: Any) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(st_model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return "sha256-" + digest.hexdigest()[:16]


def _base_name(spec: str) -> str | None:
    """The mteb name of a base-model spec: its Hub id, ``local/<folder>`` or ``random/<catalogue name>``."""
    try:
        ref = parse_model_spec(spec)
    except StRecipeError:
        return None
    if ref.kind == "local":
        # Never a machine's absolute path: the name ends up in files that may be published.
        return f"local/{slugify(Path(ref.raw).name)}"
    if ref.is_random:
        return f"random/{ref.spec.name}"  # type: ignore[union-attr]
    return ref.load_id


def base_model(spec: str, *, pooling: str, max_seq_length: int | None, normalize: bool = False,
               seed: int = 0, model_name: str | None = None) -> LoadedModel:
    """A base LM as a mean-pooled encoder (st_recipe.encoder.build_encoder), named by where it came from."""
    from st_recipe.encoder import build_encoder

    ref = parse_model_spec(spec)
    kwargs: dict[str, Any] = {"pooling": pooling, "normalize": normalize, "seed": seed}
    if max_seq_length:
        kwargs["max_seq_length"] = max_seq_length
    st_model = build_encoder(spec, **kwargs)
    name = _base_name(spec)
    if ref.kind == "local":
        revision = folder_revision(ref.raw)
    elif ref.is_random:
        revision = f"seed-{seed}"
    else:
        revision = _hub_revision(ref.load_id, None)
    # The same LM evaluated as ST loads it (e.g. last-token pooling) is another model: keep it apart.
    experiment = {"pooling": pooling, "max_seq_length": st_model.max_seq_length}
    return LoadedModel(st_model, _check_name(model_name or name or ""), revision, experiment=experiment)


def base_settings(loaded: LoadedModel) -> tuple[str, str, bool, int]:
    """The run's base model spec and how to encode it like the run: (spec, pooling, normalize, seed)."""
    recipe = loaded.record.recipe if loaded.record is not None else None
    if not isinstance(recipe, dict) or not isinstance(recipe.get("model"), str):
        raise StRecipeError(f"{loaded.run_dir / RUN_RECORD} has no recipe.model naming the base model")  # type: ignore[operator]
    modules = list(loaded.st_model)
    pooling_modules = [m for m in modules if type(m).__name__ == "Pooling"]
    trained_pooling = getattr(pooling_modules[0], "pooling_mode", "mean") if pooling_modules else "mean"
    pooling = recipe.get("pooling") if isinstance(recipe.get("pooling"), str) else trained_pooling
    normalize = any(type(m).__name__ == "Normalize" for m in modules)
    seed = recipe.get("seed") if isinstance(recipe.get("seed"), int) else 0
    return recipe["model"], pooling, normalize, seed
