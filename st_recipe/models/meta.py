"""Building a decoder's base model on PyTorch's ``meta`` device (no memory behind any tensor) and counting it.

:func:`meta_model` builds the base model a sentence encoder runs (``AutoModel``) from a parsed config.json;
:func:`meta_counts` applies a method to it, as ``method.apply`` does on a real encoder, and reports (N, N_t)
exactly. The shape tests keep these counts equal to the closed forms of :mod:`st_recipe.models.shapes`.

torch and transformers are imported only when something is built.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from st_recipe.errors import StRecipeError
from st_recipe.models.config import text_config

if TYPE_CHECKING:
    from st_recipe.models.architecture import ParamReport


def build_hf_config(text: dict[str, Any]) -> Any:
    """A transformers config object from a (text) config dict, or a one-line error."""
    from transformers import CONFIG_MAPPING

    model_type = text.get("model_type")
    if text.get("auto_map"):
        raise StRecipeError(f"{model_type!r} models need remote code (auto_map); "
                            "st-recipe builds only architectures transformers ships")
    if model_type not in CONFIG_MAPPING:
        raise StRecipeError(f"transformers {_transformers_version()} does not know model_type {model_type!r}")
    try:
        return CONFIG_MAPPING[model_type].from_dict(dict(text))
    except (TypeError, ValueError, KeyError) as exc:
        raise StRecipeError(f"invalid {model_type} config: {_first_line(exc)}") from exc


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _build_meta(config: dict[str, Any]) -> Any:
    """The transformers base model (AutoModel, as the encoder loads it) of a config, on the meta device."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    text, _ = text_config(config)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # token-id range warnings of shrunken test configs are noise here
    try:
        hf_config = build_hf_config(text)
        with torch.device("meta"):
            return AutoModel.from_config(hf_config)
    except StRecipeError:
        raise
    except (AssertionError, ValueError, TypeError, RuntimeError, KeyError) as exc:
        raise StRecipeError(f"cannot build {text.get('model_type')} from its config: {_first_line(exc)}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)


def meta_model(config: dict[str, Any]) -> Any:
    """The base model of a config on the ``meta`` device: real module structure, no tensor memory.

    For a multimodal config with a ``text_config`` (Gemma 3) this is the text decoder alone: a text
    encoder never runs the vision tower, so its parameters are not part of N.
    """
    return _build_meta(config)


class _Slot:
    """Stands in for sentence-transformers' Transformer module: ``auto_model`` reads, ``model`` is set."""

    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def auto_model(self) -> Any:
        return self.model


class _Encoder:
    """The least of a SentenceTransformer that ``Method.apply`` touches (``hf_model`` / ``set_hf_model``)."""

    _first_module = True

    def __init__(self, model: Any) -> None:
        self._slot = _Slot(model)

    def __getitem__(self, index: int) -> _Slot:
        if index != 0:
            raise IndexError(index)
        return self._slot


_META_CACHE: dict[tuple[str, str, str], tuple[int, int, ParamReport]] = {}


def meta_counts(config: dict[str, Any], method: Any) -> tuple[int, int, ParamReport]:
    """Exact (N, N_t, ParamReport) of ``method`` applied to the config's base model, built on ``meta``.

    Injected adapters are created on ``meta`` too, so no parameter memory is allocated at any size.
    """
    import torch

    key = (json.dumps(config, sort_keys=True, default=str), type(method).__qualname__, method.describe())
    hit = _META_CACHE.get(key)
    if hit is not None:
        return hit
    model = _build_meta(config)
    encoder = _Encoder(model)
    with torch.device("meta"):
        report = method.apply(encoder)
    result = (report.n_params, report.n_trainable, report)
    _META_CACHE[key] = result
    return result
