"""Peak training-memory estimate per (model, method, batch, sequence length, precision, GradCache mini-batch).

The estimate is built from four parts: weights (fp32 master copies, input embedding and injected adapter
parameters included), gradients and AdamW's two moments for the trainable parameters, and the activations
autograd saves for the backward pass. Gradients and saved activations never peak together (the trainer
frees gradients before each forward, and backward frees activations while it creates gradients), so

    peak = weights + optimizer + max(activations + one layer's working set,
                                     gradients + the optimizer step's temporaries)

Activations are counted per method from what autograd actually saves in a GPT-NeoX block (parallel
residual, SDPA attention), see :func:`activation_rule`: full fine-tuning saves every linear layer's
input for its weight gradient; bias-only tuning and the other frozen-weight methods do not, and save only
what propagating gradients needs plus what their own parameters' gradients need. ``bench/memory.py``
checks both the rule (bytes autograd saved, counted with ``saved_tensors_hooks``) and the peak.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.models.activations import ActivationRule

_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10, "kb": 2**10, "kib": 2**10,
    "m": 2**20, "mb": 2**20, "mib": 2**20,
    "g": 2**30, "gb": 2**30, "gib": 2**30,
    "t": 2**40, "tb": 2**40, "tib": 2**40,
}


def parse_memory(text: str | int | float) -> int:
    """Bytes from ``24GB``, ``24GiB``, ``512MB``, ``1.5T`` or a plain number (GB and GiB both mean 2^30)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).lower() not in _UNITS:
            raise StRecipeError(f"memory size {text!r} is not understood; write e.g. 24GB, 80GiB or 512MB")
        value, unit = float(m.group(1)), m.group(2).lower()
    if not math.isfinite(value):
        raise StRecipeError(f"memory size {text!r} is not a finite number")
    if value <= 0:
        raise StRecipeError(f"memory size must be positive, not {text!r}")
    total = value * _UNITS[unit]
    if not math.isfinite(total) or total > 2**60:  # past an exbibyte it is a typo (and int(inf) would crash)
        raise StRecipeError(f"memory size {text!r} is too large (over 1 EiB)")
    return int(total)


def format_bytes(n: float) -> str:
    """Human-readable binary size (``23.4 GiB``)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes, and its parts.

    ``activations`` are the bytes saved for backward (plus the loss's small extras); ``working`` is one
    layer's transient tensors on top of them (forward intermediates, backward gradient buffers);
    ``step_temporaries`` is what the optimizer step allocates beside the gradients.
    """

    weights: int
    gradients: int
    optimizer: int
    activations: int
    working: int = 0
    step_temporaries: int = 0

    @property
    def total(self) -> int:
        """The peak: weights and optimizer state always, then the larger of the two phases.

        Forward/backward holds the saved activations (gradients were freed before the forward and grow
        only as backward frees activations layer by layer, so their sum peaks at one end); the optimizer
        step holds the gradients and its temporaries, with the activations already gone.
        """
        return self.weights + self.optimizer + max(self.activations + self.working,
                                                   self.gradients + self.step_temporaries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready breakdown."""
        return {"weights": self.weights, "gradients": self.gradients, "optimizer": self.optimizer,
                "activations": self.activations, "working": self.working,
                "step_temporaries": self.step_temporaries, "total": self.total}


def activation_rule(spec: Any, method: Any) -> ActivationRule:
    """What autograd saves per token under ``method`` (each method owns its rule; see ``Method.activation_rule``)."""
    return method.activation_rule(spec)


def estimate_memory(
    spec: Any,
    method: Any,
    *,
    batch_size: int,
    max_seq_length: int,
    precision: str = "fp32",
    mini_batch_size: int | None = None,
    devices: int = 1,
    hard_negatives: int = 0,
) -> MemoryEstimate:
    """Peak training memory per device for a shape under a method (see the module docstring).

    Mixed precision (bf16/fp16 autocast over fp32 master weights) stores activations in 2 bytes and keeps
    a half-precision copy of every weight of the layers gradients pass through (the matmuls save it to
    compute input gradients): 2 bytes per such parameter, counted with the activations.

    ``devices`` > 1 is fully sharded data parallelism (FSDP full shard, DeepSpeed ZeRO-3) over that many
    processes: weights, gradients, optimizer state and the step's temporaries are split evenly; each device
    runs ``batch_size / devices`` pairs (or its GradCache mini-batch) and scores them against the gathered
    batch; and the unit being computed — one decoder block, all-gathered, plus the next one prefetched —
    is held whole.

    ``hard_negatives`` k adds k passage-side texts per pair: 2 + k sequences per pair in flight (the padded
    worst case, every text at ``max_seq_length``) and k more columns in the query-to-document scores.
    """
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise StRecipeError(f"devices must be an integer >= 1, not {devices!r}")
    from st_recipe.costing.pricing import param_counts

    n_params, n_trainable = param_counts(spec, method)
    h, layers = spec.hidden_size, spec.num_layers
    # The encoder holds only the input embedding (and learned positions, where a model has them).
    emb = getattr(spec, "n_input_embedding_params", spec.vocab_size * h)
    trainable_all = n_trainable + (emb if method.trains_embeddings else 0)
    weights = 4 * (n_params + emb)
    gradients = 4 * trainable_all
    optimizer = 8 * trainable_all
    # One fp32 temporary per trainable parameter during the step (foreach AdamW's sqrt of the 2nd moment).
    step_temporaries = 4 * trainable_all
    act_bytes = 4 if precision == "fp32" else 2
    grad_layers = method.gradient_layers(layers)
    rule = activation_rule(spec, method)
    local_batch = max(1, batch_size // devices)
    texts = 2 + int(hard_negatives)
    in_flight = (mini_batch_size or local_batch) * max_seq_length * (1 if mini_batch_size else texts)
    per_token = rule.per_layer * grad_layers + rule.once
    if grad_layers == layers:
        per_token -= rule.first_block_less
    activations = int(act_bytes * in_flight * per_token + in_flight * rule.mask_bytes_per_layer * grad_layers)
    if precision != "fp32" and devices == 1:
        # autocast's half-precision weight copies (sharded training gathers half-precision blocks instead)
        activations += 2 * (n_params - 2 * h) * grad_layers // layers
    if mini_batch_size:
        activations += 4 * texts * batch_size * h * 2  # GradCache keeps every embedding and its gradient
    # this device's rows of both directions' similarity matrices (query-to-document has 1 + k columns per pair)
    activations += 4 * local_batch * batch_size * texts
    # The largest tensor a block makes beyond what it saves: one f-wide intermediate (or its gradient).
    working = int(act_bytes * in_flight * spec.intermediate_size * (2 if getattr(spec, "gated_mlp", False) else 1))
    if devices > 1:
        weights, gradients, optimizer, step_temporaries = (
            -(-x // devices) for x in (weights, gradients, optimizer, step_temporaries))
        # Two gathered blocks (the one computing and the one prefetched), in the compute precision.
        weights += 2 * act_bytes * (n_params - 2 * h) // layers
    return MemoryEstimate(weights=weights, gradients=gradients, optimizer=optimizer, activations=activations,
                          working=working, step_temporaries=step_temporaries)
