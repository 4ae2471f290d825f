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


@dataclass(frozen=True)
class ActivationRule:
    """Values autograd saves per token, in units of the hidden size h (``intermediate_size`` f = 4h).

    ``per_layer`` for every block gradients flow through, ``first_block_less`` fewer in the lowest block
    when nothing below it needs a gradient, ``once`` for the embedding/final-norm level, and
    ``mask_bytes_per_layer`` one-byte dropout masks per block. ``why`` is the reasoning, for reports.
    """

    per_layer: float
    once: float
    first_block_less: float = 0.0
    mask_bytes_per_layer: float = 0.0
    why: str = ""


@dataclass(frozen=True)
class BlockPieces:
    """What autograd saves per token in one decoder block, by purpose (units: values; h hidden, f MLP width).

    For a GPT-NeoX block ``x + attn(ln1(x)) + mlp(ln2(x))`` (parallel residual, fused qkv, GELU MLP, SDPA):

    * ``propagate`` (7h + f + heads): needed to pass any gradient through the block: the norms' shared input
      (h), attention (6h + heads: q and k after the rotary embedding, v as a view of the fused qkv output
      keeping that 3h storage alive, the output and a log-sum-exp per head; fused kernels keep no S×S
      probabilities) and the MLP nonlinearity's input (f);
    * ``linear_inputs`` (3h + f): every linear layer's input, needed only for *weight* gradients (ln1 out
      into qkv, the attention output into dense, ln2 out into the up projection, the activation output into
      the down projection);
    * ``outputs`` (5h + f): every linear layer's output (qkv 3h, dense h, up f, down h), kept by methods that
      scale or mix outputs (their parameters' gradients need them).

    Llama-family blocks differ where the shape says so: sequential residual (two norm inputs, 2h), separate
    q/k/v projections with grouped-query attention (v and k are kv-wide tensors of their own), and a gated
    MLP ``down(act(gate(x)) * up(x))`` that keeps the gate input, the activation output and the up output
    (3f) and has two f-wide up outputs.
    """

    h: int
    f: int
    propagate: int
    linear_inputs: int
    outputs: int


def block_pieces(spec: Any) -> BlockPieces:
    """The per-token saved-activation pieces of one block of ``spec``'s shape (ModelSpec or ModelShape)."""
    h, f, heads = spec.hidden_size, spec.intermediate_size, spec.num_heads
    q = getattr(spec, "attention_width", h)
    kv = getattr(spec, "num_kv_heads", heads) * (q // heads)
    neox = getattr(spec, "model_type", "gpt_neox") == "gpt_neox"
    gated = bool(getattr(spec, "gated_mlp", False))
    norms = h if neox else 2 * h
    v_storage = q + 2 * kv if neox else kv  # a view of the fused qkv keeps all of it alive
    attention = v_storage + q + kv + q + heads  # v, q and k after rotary, output, log-sum-exp
    nonlinearity = 3 * f if gated else f
    up_outputs = 2 * f if gated else f
    return BlockPieces(h=h, f=f, propagate=norms + attention + nonlinearity, linear_inputs=h + q + h + f,
                       outputs=(q + 2 * kv) + h + up_outputs + h)


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
) -> MemoryEstimate:
    """Peak training memory for a catalogue shape under a method (see the module docstring).

    Mixed precision (bf16/fp16 autocast over fp32 master weights) stores activations in 2 bytes and keeps
    a half-precision copy of every weight of the layers gradients pass through (the matmuls save it to
    compute input gradients): 2 bytes per such parameter, counted with the activations.
    """
    from st_recipe.pricing import param_counts

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
    in_flight = (mini_batch_size or batch_size) * max_seq_length * (1 if mini_batch_size else 2)
    per_token = rule.per_layer * grad_layers + rule.once
    if grad_layers == layers:
        per_token -= rule.first_block_less
    activations = int(act_bytes * in_flight * per_token + in_flight * rule.mask_bytes_per_layer * grad_layers)
    if precision != "fp32":
        activations += 2 * (n_params - 2 * h) * grad_layers // layers  # autocast's half-precision weight copies
    if mini_batch_size:
        activations += 4 * 2 * batch_size * h * 2  # GradCache keeps every embedding and its gradient
    activations += 4 * batch_size * batch_size * 2  # the similarity matrices of both directions
    # The largest tensor a block makes beyond what it saves: one f-wide intermediate (or its gradient).
    working = int(act_bytes * in_flight * spec.intermediate_size * (2 if getattr(spec, "gated_mlp", False) else 1))
    return MemoryEstimate(weights=weights, gradients=gradients, optimizer=optimizer, activations=activations,
                          working=working, step_temporaries=step_temporaries)
