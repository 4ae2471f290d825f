"""What autograd saves per token in a decoder block: the pieces every method's activation rule is built from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
