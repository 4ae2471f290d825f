"""Published peak pretraining learning rates, each with its citation, and matching a model to one.

The paper fine-tunes at the model's pretraining LR / 10, so a model's LR must be known: the catalogue
(Pythia) has its own, :data:`PRETRAIN_LRS` holds the rates stated in other models' papers, and
:func:`pretrain_lr_for` finds the entry whose name pattern and shape (hidden size, layers) both match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.models.config import DEFAULTS, resolve_config, text_config


@dataclass(frozen=True)
class PretrainLR:
    """A published peak pretraining learning rate, with the model shape it belongs to and its source."""

    lr: float
    source: str
    family: str
    model_type: str
    hidden_size: int
    num_layers: int
    pattern: str  # matched against the lower-cased last component of the model name


_LLAMA2 = "Touvron et al. 2023, 'Llama 2: Open Foundation and Fine-Tuned Chat Models', Table 1"
_LLAMA1 = "Touvron et al. 2023, 'LLaMA: Open and Efficient Foundation Language Models', Table 2"
_OPT = "Zhang et al. 2022, 'OPT: Open Pre-trained Transformer Language Models', Table 1"
_TINYLLAMA = "Zhang et al. 2024, 'TinyLlama: An Open-Source Small Language Model', Section 2.3"
_OLMO = "Groeneveld et al. 2024, 'OLMo: Accelerating the Science of Language Models', Table 1"
_PYTHIA = "Biderman et al. 2023, 'Pythia: A Suite for Analyzing Large Language Models' (st_recipe.models.catalog)"

# Only rates stated in the papers; GPT-2, Mistral, Qwen, Gemma, Phi-3 and SmolLM2 publish none per size.
PRETRAIN_LRS: dict[str, PretrainLR] = {
    "llama-2-7b": PretrainLR(3e-4, _LLAMA2, "llama-2", "llama", 4096, 32, r"llama-2-7b(-hf|-chat|-chat-hf)?"),
    "llama-2-13b": PretrainLR(3e-4, _LLAMA2, "llama-2", "llama", 5120, 40, r"llama-2-13b(-hf|-chat|-chat-hf)?"),
    "llama-2-70b": PretrainLR(1.5e-4, _LLAMA2, "llama-2", "llama", 8192, 80, r"llama-2-70b(-hf|-chat|-chat-hf)?"),
    "llama-7b": PretrainLR(3e-4, _LLAMA1, "llama", "llama", 4096, 32, r"llama-7b(-hf)?"),
    "llama-13b": PretrainLR(3e-4, _LLAMA1, "llama", "llama", 5120, 40, r"llama-13b(-hf)?"),
    "llama-30b": PretrainLR(1.5e-4, _LLAMA1, "llama", "llama", 6656, 60, r"llama-3[03]b(-hf)?"),
    "llama-65b": PretrainLR(1.5e-4, _LLAMA1, "llama", "llama", 8192, 80, r"llama-65b(-hf)?"),
    "opt-125m": PretrainLR(6e-4, _OPT, "opt", "opt", 768, 12, r"opt-125m"),
    "opt-350m": PretrainLR(3e-4, _OPT, "opt", "opt", 1024, 24, r"opt-350m"),
    "opt-1.3b": PretrainLR(2e-4, _OPT, "opt", "opt", 2048, 24, r"opt-1\.3b"),
    "opt-2.7b": PretrainLR(1.6e-4, _OPT, "opt", "opt", 2560, 32, r"opt-2\.7b"),
    "opt-6.7b": PretrainLR(1.2e-4, _OPT, "opt", "opt", 4096, 32, r"opt-6\.7b"),
    "opt-13b": PretrainLR(1e-4, _OPT, "opt", "opt", 5120, 40, r"opt-13b"),
    "opt-30b": PretrainLR(1e-4, _OPT, "opt", "opt", 7168, 48, r"opt-30b"),
    "opt-66b": PretrainLR(8e-5, _OPT, "opt", "opt", 9216, 64, r"opt-66b"),
    "tinyllama-1.1b": PretrainLR(4e-4, _TINYLLAMA, "tinyllama", "llama", 2048, 22, r"tinyllama-1\.1b(-.*)?"),
    "olmo-1b": PretrainLR(4e-4, _OLMO, "olmo", "olmo", 2048, 16, r"olmo-1b(-hf)?"),
    "olmo-7b": PretrainLR(3e-4, _OLMO, "olmo", "olmo", 4096, 32, r"olmo-7b(-hf)?"),
}
# The family a shape reports, by the citation its LR came from.
LR_FAMILY = {e.source: e.family for e in PRETRAIN_LRS.values()} | {_PYTHIA: "pythia"}


def _name_candidates(config: dict[str, Any], name: str) -> list[str]:
    from st_recipe.models.catalog import RANDOM_PREFIX

    out = []
    for raw in (name, config.get("_name_or_path")):
        if isinstance(raw, str) and raw.strip():
            out.append(raw.strip().removeprefix(RANDOM_PREFIX).rstrip("/").rsplit("/", 1)[-1].lower())
    return out


def pretrain_lr_for(config: dict[str, Any], name: str) -> tuple[float, str] | None:
    """(published pretraining LR, its source) when the name and the config's shape match a known model."""
    text, nested = text_config(config)
    model_type = text.get("model_type")
    if model_type in DEFAULTS:
        try:
            c = resolve_config(text, nested)
        except StRecipeError:
            return None
    else:
        c = text
    hidden = c.get("hidden_size", c.get("n_embd"))
    layers = c.get("num_hidden_layers", c.get("n_layer"))
    from st_recipe.models.catalog import get_spec

    for base in _name_candidates(config, name):
        if model_type == "gpt_neox":
            try:
                spec = get_spec(base)
            except StRecipeError:
                spec = None
            if spec is not None and (spec.hidden_size, spec.num_layers) == (hidden, layers):
                return spec.pretrain_lr, _PYTHIA
        for entry in PRETRAIN_LRS.values():
            if (re.fullmatch(entry.pattern, base) and entry.model_type == model_type
                    and (entry.hidden_size, entry.num_layers) == (hidden, layers)):
                return entry.lr, entry.source
    return None
