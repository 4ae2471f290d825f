"""Peak training-memory estimate per (model, method, batch, sequence length, precision, GradCache mini-batch).

The estimate adds: weights (fp32 master copies; embeddings included), gradients and AdamW's two moments
for the trainable parameters, and activations saved for the backward pass. Activations follow the
per-layer accounting of Korthikanti et al. 2022 (about 17·h values per token per layer with fused
attention) for the layers gradients flow through (all of them, except the frozen prefix under block
freezing), for both sides of each pair at once, or for one mini-batch at a time under GradCache. The
bench (``bench/``) compares it with measured peaks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from st_recipe.errors import StRecipeError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10, "kb": 2**10, "kib": 2**10,
    "m": 2**20, "mb": 2**20, "mib": 2**20,
    "g": 2**30, "gb": 2**30, "gib": 2**30,
    "t": 2**40, "tb": 2**40, "tib": 2**40,
}
ACTIVATION_VALUES_PER_TOKEN_PER_LAYER = 17  # × hidden size; Korthikanti et al. 2022, fused attention


def parse_memory(text: str | int | float) -> int:
    """Bytes from ``24GB``, ``24GiB``, ``512MB``, ``1.5T`` or a plain number (GB and GiB both mean 2^30)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).lower() not in _UNITS:
            raise StRecipeError(f"memory size {text!r} is not understood; write e.g. 24GB, 80GiB or 512MB")
        value, unit = float(m.group(1)), m.group(2).lower()
    if not math.isfinite(value) or value <= 0:
        raise StRecipeError(f"memory size must be positive, not {text!r}")
    return int(value * _UNITS[unit])


def format_bytes(n: float) -> str:
    """Human-readable binary size (``23.4 GiB``)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes, and its parts."""

    weights: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        """Sum of the parts."""
        return self.weights + self.gradients + self.optimizer + self.activations

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready breakdown."""
        return {"weights": self.weights, "gradients": self.gradients, "optimizer": self.optimizer,
                "activations": self.activations, "total": self.total}


def estimate_memory(
    spec: Any,
    method: Any,
    *,
    batch_size: int,
    max_seq_length: int,
    precision: str = "fp32",
    mini_batch_size: int | None = None,
) -> MemoryEstimate:
    """Peak training memory for a catalogue shape under a method (see the module docstring)."""
    counts = method.predict_params(spec)
    if counts is None:
        raise StRecipeError(f"no memory estimate for {method.describe()} (only default targets have a closed form)")
    n_params, n_trainable = counts
    h, layers = spec.hidden_size, spec.num_layers
    emb = spec.vocab_size * h  # the encoder has only the input embedding
    trainable_all = n_trainable + (emb if method.name == "full" else 0)
    weights = 4 * (n_params + emb)
    gradients = 4 * trainable_all
    optimizer = 8 * trainable_all
    act_bytes = 4 if precision == "fp32" else 2
    grad_layers = layers
    if method.name == "freeze":
        grad_layers = method.trained_blocks(layers)
    in_flight = (mini_batch_size or batch_size) * max_seq_length * (1 if mini_batch_size else 2)
    per_token = ACTIVATION_VALUES_PER_TOKEN_PER_LAYER * h * grad_layers + 2 * h  # + the pooled hidden states
    activations = int(act_bytes * in_flight * per_token)
    if mini_batch_size:
        activations += 4 * 2 * batch_size * h * 2  # GradCache keeps every embedding and its gradient
    activations += 4 * batch_size * batch_size * 2  # the similarity matrices of both directions
    return MemoryEstimate(weights=weights, gradients=gradients, optimizer=optimizer, activations=activations)
