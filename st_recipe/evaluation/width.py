"""The width of a model's sentence embeddings, read from its config files before any weights are loaded.

``eval --truncate-dim D`` needs D at most that width; reading it from ``modules.json`` and each module's
config lets a too-large D fail in a fraction of a second instead of after the imports and the model load.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from st_recipe.errors import StRecipeError

# Modules that pass the embedding through at the same width.
_SAME_WIDTH = {"Normalize", "Dropout", "LayerNorm", "WeightedLayerPooling"}
_LEGACY_MODES = ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_tokens",
                 "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _hidden_size(config: Any) -> int | None:
    from st_recipe.models.config import text_config

    if not isinstance(config, dict):
        return None
    text, _ = text_config(config)
    for key in ("hidden_size", "n_embd", "d_model"):
        if isinstance(text.get(key), int) and not isinstance(text.get(key), bool):
            return text[key]
    return None


def _pooling_width(config: Any) -> int | None:
    if not isinstance(config, dict):
        return None
    if isinstance(config.get("embedding_dimension"), int):  # sentence-transformers 5: one mode or a list
        modes = config.get("pooling_mode", "mean")
        return config["embedding_dimension"] * (len(modes) if isinstance(modes, (list, tuple)) else 1)
    if isinstance(config.get("word_embedding_dimension"), int):  # older files: one flag per mode
        return config["word_embedding_dimension"] * max(1, sum(bool(config.get(k)) for k in _LEGACY_MODES))
    return None


def _modules_width(folder: Path, modules: Any) -> int | None:
    """The width after the last module of a sentence-transformers folder, or None where a module is not understood."""
    if not isinstance(modules, list):
        return None
    width = None
    for module in modules:
        if not isinstance(module, dict):
            return None
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        config = _json(folder / str(module.get("path", "")) / "config.json")
        if kind == "Transformer":
            width = _hidden_size(config)
        elif kind == "Pooling":
            width = _pooling_width(config)
        elif kind == "Dense":
            width = config.get("out_features") if isinstance(config, dict) else None
        elif kind not in _SAME_WIDTH:
            return None
        if width is None:
            return None
    return width


def embedding_width(model: str) -> int | None:
    """The embedding width of a model folder or catalogue model from its files; None when it cannot be told."""
    raw = os.path.expanduser(model.strip())
    folder = Path(raw)
    if folder.is_dir():
        if (folder / "modules.json").is_file():
            return _modules_width(folder, _json(folder / "modules.json"))
        return _hidden_size(_json(folder / "config.json"))  # a plain model folder, evaluated mean-pooled
    from st_recipe.models.args import parse_model_spec

    try:
        ref = parse_model_spec(model)
    except StRecipeError:
        return None
    return ref.spec.hidden_size if ref.spec is not None and ref.kind != "local" else None


def check_truncate_dim(model: Any, dim: int | None) -> None:
    """Refuse a ``--truncate-dim`` wider than the model's embeddings, from its config files (no weights)."""
    if dim is None or not isinstance(model, (str, os.PathLike)):
        return
    full = embedding_width(os.fspath(model))
    if full is not None and dim > full:
        raise StRecipeError(f"--truncate-dim {dim} exceeds the model's embedding dimension {full}")
