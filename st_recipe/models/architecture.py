"""Where things are in a Hugging Face decoder: the block stack, the embeddings, the layers adapters target.

One module for the model-structure rules every stage shares (methods, the FLOP meter, pricing), so an
architecture is taught once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from st_recipe.errors import StRecipeError


def hf_model(st_model: Any) -> Any:
    """The transformers model inside a SentenceTransformer (or the model itself if given one)."""
    first = st_model[0] if hasattr(st_model, "_first_module") else st_model
    return getattr(first, "auto_model", first)


def set_hf_model(st_model: Any, model: Any) -> None:
    """Replace the transformers model inside a SentenceTransformer's first module."""
    st_model[0].model = model


def embedding_param_names(model: Any) -> set[str]:
    """Names of embedding parameters: any name containing 'emb' (the paper's rule) or owned by an embedding."""
    import torch

    prefixes = [name for name, mod in model.named_modules() if isinstance(mod, torch.nn.Embedding) and name]
    # An adapter wraps the embedding (``wte`` -> ``wte.base_layer``): its own parameters are embeddings too.
    prefixes += [p.removesuffix(".base_layer") for p in prefixes if p.endswith(".base_layer")]
    names = set()
    for name, _ in model.named_parameters():
        if "emb" in name or any(name == p or name.startswith(p + ".") for p in prefixes):
            names.add(name)
    return names


def match_modules(model: Any, targets: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    """Module names matched by each target (exact name or a dotted suffix, as PEFT matches)."""
    names = [n for n, _ in model.named_modules() if n]
    return {t: [n for n in names if n == t or n.endswith("." + t)] for t in targets}


def find_blocks(model: Any) -> tuple[str, int]:
    """The dotted name and length of the model's stack of transformer blocks."""
    import torch

    expected = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    candidates = [
        (name, len(mod))
        for name, mod in model.named_modules()
        if isinstance(mod, torch.nn.ModuleList) and len(mod) > 0 and name
    ]
    if expected is not None:
        exact = [c for c in candidates if c[1] == expected]
        candidates = exact or candidates
    if not candidates:
        raise StRecipeError(f"cannot find the transformer blocks of {type(model).__name__}")
    return max(candidates, key=lambda c: c[1])


_LLAMA_LIKE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# The paper adapts the attention, output and MLP projections and the input embedding.
LINEAR_TARGETS: dict[str, tuple[str, ...]] = {
    "gpt_neox": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    **{t: _LLAMA_LIKE for t in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "olmo", "olmo2")},
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
}


def input_embedding_name(model: Any) -> str | None:
    """Dotted name of the model's input embedding module, if it has one."""
    try:
        emb = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    for name, mod in model.named_modules():
        if mod is emb and name:
            return name
    return None


def default_targets(model: Any, *, include_embedding: bool = True) -> tuple[str, ...]:
    """Target names for a model: known names by architecture, else every linear layer, plus the input embedding."""
    import torch

    model_type = getattr(getattr(model, "config", None), "model_type", "")
    linear = LINEAR_TARGETS.get(model_type)
    if linear is None:
        found = {
            name.rsplit(".", 1)[-1]
            for name, mod in model.named_modules()
            if name and isinstance(mod, torch.nn.Linear)
        }
        linear = tuple(sorted(found))
    targets = tuple(linear)
    emb = input_embedding_name(model) if include_embedding else None
    if emb:
        targets += (emb.rsplit(".", 1)[-1],)
    return targets


@dataclass(frozen=True)
class ParamReport:
    """Parameter counts after a method is applied.

    ``n_params`` / ``n_trainable`` exclude embedding parameters (the paper's convention, which is also
    what the FLOP formulas take); the ``*_all`` counts include everything, for display.
    """

    method: str
    n_params: int
    n_trainable: int
    n_params_all: int
    n_trainable_all: int

    @property
    def trainable_fraction(self) -> float:
        """Trainable share of the non-embedding parameters."""
        return self.n_trainable / self.n_params if self.n_params else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the trainable fraction."""
        out = dataclasses.asdict(self)
        out["trainable_fraction"] = self.trainable_fraction
        return out


def count_params(model: Any, method: str) -> ParamReport:
    """Count total and trainable parameters, with and without embeddings."""
    emb = embedding_param_names(model)
    n = nt = n_all = nt_all = 0
    for name, p in model.named_parameters():
        size = p.numel()
        n_all += size
        nt_all += size if p.requires_grad else 0
        if name not in emb:
            n += size
            nt += size if p.requires_grad else 0
    return ParamReport(method=method, n_params=n, n_trainable=nt, n_params_all=n_all, n_trainable_all=nt_all)
