"""The one owner of "what is this MODEL argument?".

A MODEL is a catalogue name (``pythia-410m``), ``random:<name>``, a local folder (a full transformers model, a
sentence-transformers folder or an st-recipe run dir), a Hub id, or bad input, refused in one line. Nothing here
touches the network or loads weights: :func:`classify_model` reads the text and local files only, and
:func:`check_model` adds the one network question (can a Hub model be downloaded now or read from the cache?).
:func:`locate_model` says where a base model is without opening its files (for readers of its config), and
:func:`compare_base_record` whether MODEL is a run dir that names its base model (``--compare-base``).

Two readings share these rules. A *base model* (``train --model``, ``sweep --models``, ``mine --model``, planning)
is a transformers model, so a folder must hold ``config.json``. An *encoder* (``eval MODEL``) may also be a run
dir or a sentence-transformers folder, and its ``ORG/NAME[@REV]`` names a sentence-transformers model on the Hub.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.hub.ids import is_repo_id, split_revision
from st_recipe.models.catalog import CATALOG, RANDOM_PREFIX, ModelSpec, catalog_key, get_spec, spec_from_local, suggest
from st_recipe.run import RUN_RECORD

ST_MODULES = "modules.json"
HF_CONFIG = "config.json"
# What a MODEL can be; run dirs and sentence-transformers folders load as saved, pooling included.
KINDS = ("run", "sentence-transformers", "transformers", "random", "catalogue", "hub")


@dataclass(frozen=True)
class ModelRef:
    """A parsed base-model argument: a catalogue entry, a random-init spec, a Hub id or a local folder."""

    raw: str
    kind: str  # "random" | "hub" | "local"
    spec: ModelSpec | None = None

    @property
    def is_random(self) -> bool:
        """True for ``random:<name>`` specs: randomly initialised weights, for tests and demos only."""
        return self.kind == "random"

    @property
    def load_id(self) -> str:
        """What to hand to ``from_pretrained`` (the Hub id for catalogue names)."""
        if self.kind == "hub" and self.spec is not None:
            return self.spec.hub_id
        return self.raw

    @property
    def display(self) -> str:
        """A label for logs and run records; random models say so."""
        if self.is_random:
            return f"{self.raw} (randomly initialised, not pretrained)"
        return self.load_id


@dataclass(frozen=True)
class ModelArg:
    """A classified MODEL argument: its kind (one of :data:`KINDS`) and where it loads from."""

    given: str
    kind: str
    path: Path | None = None  # the folder kinds: absolute, ~ expanded
    repo: str | None = None  # the catalogue and Hub kinds: the Hub id to download
    revision: str | None = None
    ref: ModelRef | None = None  # the base-model reading, wherever there is a transformers config to read

    @property
    def saved_encoder(self) -> bool:
        """True for a run dir or a sentence-transformers folder: it loads as saved, pooling included."""
        return self.kind in ("run", "sentence-transformers")


def parse_model_spec(model: str) -> ModelRef:
    """A base-model argument as a :class:`ModelRef`, without touching the network or loading weights."""
    ref = locate_model(model)
    if ref.kind == "local":
        # Reads config.json: impossible shape values fail now, and a GPT-NeoX folder finds its catalogue entry.
        return replace(ref, spec=spec_from_local(os.path.expanduser(model.strip())))
    return ref


def locate_model(model: str) -> ModelRef:
    """Where a base model is: :func:`parse_model_spec` without reading a local folder's files (its ``spec`` is None)."""
    if not isinstance(model, str) or not model.strip():
        raise StRecipeError("model must be a non-empty string (a catalogue name, Hub id, local folder or random:<name>)")
    model = model.strip()
    if model.startswith(RANDOM_PREFIX):
        name = model[len(RANDOM_PREFIX) :]
        return ModelRef(raw=f"{RANDOM_PREFIX}{get_spec(name).name}", kind="random", spec=get_spec(name))
    expanded = os.path.expanduser(model)
    if os.path.isdir(expanded):
        return ModelRef(raw=os.path.abspath(expanded), kind="local")
    key = catalog_key(model)
    if key is not None:
        return ModelRef(raw=model, kind="hub", spec=CATALOG[key])
    looks_like_path = model.startswith((".", "/", "~")) or os.sep in model.strip("/").replace("/", "", 1)
    if looks_like_path or os.path.exists(expanded) or model.count("/") > 1:
        raise StRecipeError(f"model path {model!r} does not exist or is not a folder")
    if is_repo_id(model):
        return ModelRef(raw=model, kind="hub")
    raise StRecipeError(
        f"unknown model {model!r}: not a catalogue name{suggest(model, tuple(CATALOG))}, a Hub id (org/name) or a local folder"
    )


def classify_model(model: Any, *, encoder: bool = False, what: str = "model") -> ModelArg:
    """What a MODEL argument is, from its text and local files only; bad input is one line.

    ``encoder``: the argument names an encoder to use as it is (``eval``), not a base model to build one from.
    ``what`` names the argument in a base model's messages (``base model`` for a run's own).
    """
    if encoder:
        text = encoder_text(model)
        path = Path(os.path.expanduser(text))
        if path.is_dir():
            return _folder(text, text, encoder=True, what=what)
        if path.exists():
            raise StRecipeError(f"{text!r} is a file, not a model folder")
        repo, revision = split_revision(text)
        if is_repo_id(repo):
            return ModelArg(text, "hub", repo=repo, revision=revision)
    ref = parse_model_spec(model)
    if ref.kind == "local":
        return _folder(model.strip(), model, encoder=False, what=what, ref=ref)
    kind = "random" if ref.is_random else "catalogue" if ref.spec is not None else "hub"
    return ModelArg(model.strip(), kind, repo=None if ref.is_random else ref.load_id, ref=ref)


def encoder_text(model: Any) -> str:
    """An encoder MODEL argument, stripped; empty is refused."""
    text = model.strip() if isinstance(model, str) else ""
    if not text:
        raise StRecipeError("MODEL must not be empty: give a run dir, a model folder or a Hub id")
    return text


def _folder(text: str, given: str, *, encoder: bool, what: str, ref: ModelRef | None = None) -> ModelArg:
    """A local folder by what it holds: a run record, a sentence-transformers modules.json, a transformers config."""
    folder = Path(os.path.expanduser(text))
    holds = {name for name in (RUN_RECORD, ST_MODULES, HF_CONFIG) if (folder / name).is_file()}
    if encoder and not holds:
        raise StRecipeError(f"{given!r} is not a model folder (no {ST_MODULES}, {HF_CONFIG} or {RUN_RECORD})")
    if encoder and RUN_RECORD in holds and ST_MODULES not in holds:
        raise StRecipeError(f"run dir {given!r} holds no model (no {ST_MODULES}): did training finish?")
    if not encoder and HF_CONFIG not in holds:
        raise StRecipeError(f"{what} folder {given!r} has no {HF_CONFIG}, so it is not a Hugging Face model folder")
    if ref is None and HF_CONFIG in holds:
        ref = parse_model_spec(text)  # reads config.json: impossible shape values fail now, not after the imports
    kind = "run" if RUN_RECORD in holds else "sentence-transformers" if ST_MODULES in holds else "transformers"
    return ModelArg(text, kind, path=Path(os.path.abspath(folder)), ref=ref)


def check_model(model: Any, *, encoder: bool = False, compare_base: bool = False, what: str = "model",
                instead: str = "pass --model DIR") -> ModelArg:
    """:func:`classify_model`, and a model the Hub would supply must be reachable or cached (``instead``: the way out).

    ``compare_base`` (encoders): MODEL must be a run dir, and the base model its record names must be there too.
    """
    if compare_base:
        base = run_base_model(encoder_text(model))
        if base is not None:
            # The base model loads after the run has been evaluated: a missing one should not cost that wait.
            check_model(base, what="base model", instead="evaluate without --compare-base")
    arg = classify_model(model, encoder=encoder, what=what)
    if arg.repo is not None:
        from st_recipe.hub import access as hub_access

        hub_access.require_model(arg.repo, revision=arg.revision, what=what, instead=instead)
    return arg


def compare_base_record(model: Any) -> Path:
    """The run record ``--compare-base`` reads the base model from: MODEL must be a run dir (a path), else one line."""
    text = os.fspath(model).strip() if isinstance(model, (str, os.PathLike)) else ""
    record = Path(os.path.expanduser(text)) / RUN_RECORD
    if not text or not record.is_file():
        raise StRecipeError(f"--compare-base needs a run dir with {RUN_RECORD} (its recipe.model names the base model)")
    return record


def run_base_model(model: str) -> str | None:
    """The base model a run dir's record names (``recipe.model``); a MODEL that is not a run dir is refused."""
    from st_recipe._io import read_json_object

    recipe = read_json_object(compare_base_record(model)).get("recipe")
    base = recipe.get("model") if isinstance(recipe, dict) else None
    return base if isinstance(base, str) else None
