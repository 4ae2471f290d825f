"""FLOP accounting: the paper's per-token costs, budget <-> pairs, and an exact meter for real batches.

Two levels of accuracy, deliberately kept apart:

* **Planning (the paper's convention).** Training cost per token from N and N_t, the non-embedding
  parameter counts (Kaplan et al.: forward 2N, backward 4N): full fine-tuning 6N, block freezing
  2N + 4N_t, bias-only / LoRA / Propulsion / other PEFT 4N + 2N_t (each method's ``flops_per_token``
  says why). A pair is 78 tokens (14 query + 64 positive, measured by the paper on BGE data at length 75),
  so ``pairs = budget / (cost_per_token * 78)``.
* **Metering (what a batch really costs).** :class:`CostProfile` is read off the live model once: the
  matrix-multiply weights each token passes through (biases and norms are not matmuls), which of them
  get weight gradients, which layers need input gradients (autograd only computes those where something
  earlier trains), and the attention-score cost per layer (4·T²·d forward, 8·T²·d backward where
  gradients flow, d = heads × head size), which the paper ignores. :class:`FlopMeter` applies it to the
  actual tokens of each batch, both sides of every pair.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

from st_recipe.errors import StRecipeError

TOKENS_PER_PAIR = 78
QUERY_TOKENS = 14
POSITIVE_TOKENS = 64


def paper_flops_per_token(method: Any, n_params: int, n_trainable: int) -> float:
    """The paper's training cost per token for a method (object or name) from N and N_t."""
    if isinstance(method, str):
        from st_recipe.methods import get_method_class

        cls = get_method_class(method)
        method = cls.__new__(cls)  # flops_per_token depends on the counts only, not on the arguments
    return float(method.flops_per_token(n_params, n_trainable))


def pairs_for_budget(budget: float, flops_per_token: float, tokens_per_pair: float = TOKENS_PER_PAIR) -> int:
    """How many (query, positive) pairs a FLOP budget buys: budget / (cost per token × tokens per pair)."""
    check_budget(budget)
    if flops_per_token <= 0 or tokens_per_pair <= 0:
        raise StRecipeError("cost per token and tokens per pair must be positive")
    return int(math.floor(budget / (flops_per_token * tokens_per_pair)))


def budget_for_pairs(pairs: int, flops_per_token: float, tokens_per_pair: float = TOKENS_PER_PAIR) -> float:
    """FLOPs needed to train on ``pairs`` pairs under the planning convention."""
    return float(pairs) * flops_per_token * tokens_per_pair


def check_budget(budget: Any) -> float:
    """A budget must be a finite positive number of FLOPs."""
    try:
        value = float(budget)
    except (TypeError, ValueError):
        raise StRecipeError(f"budget must be a number of FLOPs such as 1e17, not {budget!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise StRecipeError(f"budget must be a finite positive number of FLOPs, not {budget!r}")
    return value


MAX_BUDGET = 1e26
"""The largest budget planned or trained without ``--force``: about the compute of today's largest pretraining
runs, so a fine-tuning budget above it is a typo (1e40 planned 2.8e27 pairs, a run that could never end)."""


def check_budget_ceiling(budget: float | None, force: bool = False, *, can_force: bool = True) -> None:
    """Refuse a budget above :data:`MAX_BUDGET` unless ``force`` (``can_force``: the command has --force)."""
    if budget is not None and budget > MAX_BUDGET and not force:
        hint = "pass --force to use it anyway" if can_force else "sweep cells must stay below it"
        raise StRecipeError(f"budget {budget:.3g} FLOP is above the {MAX_BUDGET:.0e} ceiling (more than the largest "
                            f"pretraining runs; likely a typo); {hint}".replace("e+", "e"))


@dataclass(frozen=True)
class CostProfile:
    """Per-token and per-T² FLOP coefficients of one training step, read off a live model.

    A sequence of T tokens costs ``(forward + backward) * T + (attention_forward + attention_backward) * T**2``.
    """

    forward_per_token: float
    backward_per_token: float
    attention_forward: float
    attention_backward: float
    matmul_weights: int
    layers_with_grad: int
    layers: int

    @property
    def per_token(self) -> float:
        """Linear-layer FLOPs per token, forward + backward."""
        return self.forward_per_token + self.backward_per_token

    def sequence_flops(self, length: int | float) -> float:
        """Training FLOPs for one sequence of ``length`` tokens."""
        return self.per_token * length + (self.attention_forward + self.attention_backward) * float(length) ** 2

    def forward_flops(self, length: int | float) -> float:
        """Inference (forward-only) FLOPs for one sequence of ``length`` tokens, e.g. to encode it for mining."""
        return self.forward_per_token * length + self.attention_forward * float(length) ** 2

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready coefficients."""
        return asdict(self)


def profile_model(model: Any, *, attention_backward_factor: float = 2.0, probe_tokens: int = 4) -> CostProfile:
    """Read a :class:`CostProfile` off a model (a SentenceTransformer or a transformers model).

    Runs one tiny forward pass with hooks (no backward) to see which linear layers get input gradients;
    the model's trainable flags must already be set by the method. ``attention_backward_factor`` is 2 for
    plain (math/eager) attention; fused kernels that recompute the scores cost 2.5.
    """
    from st_recipe.models.architecture import hf_model

    model = hf_model(model)
    probe = _GradientProbe()
    probe.run(model, probe_tokens)
    forward, backward, grad_layers = _matmul_costs(model, probe.records, *_lora_embedding_costs(model))
    total_weights = sum({n: w for n, w, *_ in probe.records}.values())
    attn_fwd, attn_bwd, layers_with_grad, n_layers = _attention_costs(
        model, grad_layers, probe.qk_grad, attention_backward_factor)
    return CostProfile(
        forward_per_token=forward,
        backward_per_token=backward,
        attention_forward=attn_fwd,
        attention_backward=attn_bwd,
        matmul_weights=total_weights,
        layers_with_grad=layers_with_grad,
        layers=n_layers,
    )


class _GradientProbe:
    """Step 1 of :func:`profile_model`: one forward pass with hooks, recording what gradients would reach.

    ``records`` holds, per linear-layer call, ``(name, weights, input needs grad, output needs grad or
    weight trains)``; ``qk_grad`` says whether each query/key projection's output needs a gradient, which
    decides which halves of the score matmul's backward run.
    """

    def __init__(self) -> None:
        self.records: list[tuple[str, int, bool, bool]] = []
        self.qk_grad: dict[str, bool] = {}

    def _watch(self, name: str, weights: int, trainable: bool) -> Any:
        def hook(_mod: Any, inputs: Any, output: Any) -> None:
            x = inputs[0] if inputs else None
            out_grad = bool(getattr(output, "requires_grad", False))
            self.records.append((name, weights, bool(getattr(x, "requires_grad", False)), trainable or out_grad))

        return hook

    def _watch_qk(self, name: str) -> Any:
        def hook(_mod: Any, _inputs: Any, output: Any) -> None:
            out = output[0] if isinstance(output, tuple) else output
            self.qk_grad[name] = self.qk_grad.get(name, False) or bool(getattr(out, "requires_grad", False))

        return hook

    def _install(self, model: Any) -> list[Any]:
        import torch

        hooks = []
        for name, mod in model.named_modules():
            if name.rsplit(".", 1)[-1] in _QK_NAMES:
                hooks.append(mod.register_forward_hook(self._watch_qk(name)))
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear):
                hooks.append(mod.register_forward_hook(self._watch(name, mod.weight.numel(), mod.weight.requires_grad)))
            elif type(mod).__name__ == "Conv1D" and hasattr(mod, "weight"):  # GPT-2 style linear layers
                hooks.append(mod.register_forward_hook(self._watch(name, mod.weight.numel(), mod.weight.requires_grad)))
        return hooks

    def run(self, model: Any, probe_tokens: int) -> None:
        """Install the hooks, run ``probe_tokens`` tokens through ``model`` in training mode, remove them."""
        import torch

        hooks = self._install(model)
        device = next(model.parameters()).device
        ids = torch.ones((1, probe_tokens), dtype=torch.long, device=device)
        was_training = model.training
        try:
            model.train()
            with torch.enable_grad():
                model(input_ids=ids, attention_mask=torch.ones_like(ids))
        finally:
            for h in hooks:
                h.remove()
            model.train(was_training)


def _lora_embedding_costs(model: Any) -> tuple[float, float]:
    """Per-token (forward, backward) FLOPs of LoRA on an embedding: a lookup into A (free), then a matmul with B."""
    import torch

    extra_forward = extra_backward = 0.0
    for _name, mod in model.named_modules():
        lora_b = getattr(mod, "lora_embedding_B", None)
        if isinstance(lora_b, torch.nn.ParameterDict):
            for p in lora_b.values():
                extra_forward += 2.0 * p.numel()
                extra_backward += 2.0 * p.numel() if p.requires_grad else 0.0
    return extra_forward, extra_backward


def _matmul_costs(model: Any, records: list[tuple[str, int, bool, bool]], forward: float = 0.0,
                  backward: float = 0.0) -> tuple[float, float, set[str]]:
    """Per-token (forward, backward) matmul FLOPs of the probed calls added to ``forward``/``backward``
    (the LoRA-embedding costs), and the layers gradients flow through.

    Every call counts: a module applied twice per token (shared weights) really costs twice.
    """
    grad_layers: set[str] = set()
    for name, weights, input_grad, output_grad in records:
        forward += 2.0 * weights
        if input_grad:
            backward += 2.0 * weights
        if _trainable_weight(model, name):
            backward += 2.0 * weights
        if output_grad or input_grad:
            grad_layers.add(name)
    return forward, backward, grad_layers


def _attention_costs(model: Any, grad_layers: set[str], qk_grad: dict[str, bool],
                     attention_backward_factor: float) -> tuple[float, float, int, int]:
    """Attention-score coefficients per T²: (forward, backward, layers with gradients, layers).

    QK^T and AV each cost 2·T²·d per layer forward; backward runs where gradients flow: dP and dV always,
    dQ and dK only where queries and keys need gradients.
    """
    from st_recipe.models.architecture import find_blocks

    d_attn = _attention_width(getattr(model, "config", None))
    stack, n_layers = find_blocks(model)
    layers_with_grad = 0
    score_backward = 0.0  # in units of 2·T²·d
    for i in range(n_layers):
        if not any(n.startswith(f"{stack}.{i}.") for n in grad_layers):
            continue
        layers_with_grad += 1
        mine = {n.rsplit(".", 1)[-1]: g for n, g in qk_grad.items() if n.startswith(f"{stack}.{i}.")}
        fused = any(mine.get(k, False) for k in _FUSED_QKV)
        q = fused or mine.get("q_proj", mine.get("query", not mine))
        k = fused or mine.get("k_proj", mine.get("key", not mine))
        score_backward += 2 + int(q) + int(k)
    attn_fwd = 4.0 * d_attn * n_layers
    attn_bwd = attention_backward_factor * d_attn * score_backward
    return attn_fwd, attn_bwd, layers_with_grad, n_layers


_FUSED_QKV = ("query_key_value", "c_attn", "qkv_proj", "Wqkv")
_QK_NAMES = frozenset({"q_proj", "k_proj", "query", "key", *_FUSED_QKV})


def _trainable_weight(model: Any, module_name: str) -> bool:
    mod = model.get_submodule(module_name)
    return bool(mod.weight.requires_grad)


def _attention_width(config: Any) -> int:
    heads = getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    head_dim = getattr(config, "head_dim", None) or (hidden // heads if heads and hidden else None)
    if not heads or not head_dim:
        raise StRecipeError("cannot read the attention shape (heads, head size) from the model config")
    return int(heads * head_dim)


@dataclass
class FlopMeter:
    """Counts the FLOPs of real batches with a model's :class:`CostProfile`.

    ``count_padding=False`` (default) meters the actual tokens of every text, both sides of each pair:
    the budget then means the same whatever the batch's padding. ``count_padding=True`` meters what a
    padded batch makes the hardware compute (every sequence at the batch's longest length), as an
    MFU-style measure.
    """

    profile: CostProfile
    count_padding: bool = False
    flops: float = 0.0
    tokens: int = 0
    sequences: int = 0

    def batch_flops(self, lengths_per_side: Iterable[Sequence[int]]) -> float:
        """FLOPs of one batch given each side's per-text token counts (does not add them to the total)."""
        total = 0.0
        for lengths in lengths_per_side:
            lengths = list(lengths)
            if not lengths:
                continue
            if self.count_padding:
                longest = max(lengths)
                total += len(lengths) * self.profile.sequence_flops(longest)
            else:
                total += sum(self.profile.sequence_flops(t) for t in lengths)
        return total

    def add(self, lengths_per_side: Iterable[Sequence[int]]) -> float:
        """Meter a batch and add it to the running totals; returns the batch's FLOPs."""
        sides = [list(s) for s in lengths_per_side]
        flops = self.batch_flops(sides)
        self.flops += flops
        self.tokens += sum(sum(s) for s in sides)
        self.sequences += sum(len(s) for s in sides)
        return flops

    def state_dict(self) -> dict[str, Any]:
        """Totals, for checkpoints (the profile is re-read from the model on resume)."""
        return {"flops": self.flops, "tokens": self.tokens, "sequences": self.sequences}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore totals saved by :meth:`state_dict`."""
        self.flops = float(state["flops"])
        self.tokens = int(state["tokens"])
        self.sequences = int(state["sequences"])


def lengths_from_mask(attention_mask: Any) -> list[int]:
    """Per-row token counts of an attention mask (tensor or nested lists)."""
    if hasattr(attention_mask, "sum"):
        return [int(x) for x in attention_mask.sum(dim=-1).tolist()]
    return [int(sum(row)) for row in attention_mask]


def format_flops(value: float) -> str:
    """``1.23e17``-style rendering used in tables and logs."""
    return f"{value:.3g}" if value < 1e4 else f"{value:.3e}".replace("e+", "e")
