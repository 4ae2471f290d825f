"""The budget trainer's progress as one object: totals, the step in progress, the loss and dev-score curves.

Checkpoints save it (:meth:`BudgetState.saved`) and ``--resume`` restores it, so a resumed run reports the
same curves as one that never stopped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BudgetState:
    """Everything the budget trainer knows about its progress (global over all processes)."""

    budget: float
    flops: float = 0.0
    padded: float = 0.0
    tokens: int = 0
    pairs: int = 0
    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)  # the learning rate each step's optimizer update used
    stopped_by: str = "max_steps"
    partial_final_batch: int | None = None
    # Dev-set evaluation during training (--eval-file): one {flops, step, score} per evaluation, and the
    # forward FLOPs those evaluations ran, which are reported apart from the training budget.
    dev: list[dict[str, Any]] = field(default_factory=list)
    eval_flops: float = 0.0
    # This process's counts for the step in progress, summed over processes when the step ends.
    step_flops: float = 0.0
    step_padded: float = 0.0
    step_tokens: int = 0
    step_pairs: int = 0

    @property
    def remaining(self) -> float:
        """FLOPs still unspent."""
        return self.budget - self.flops

    def metrics(self) -> dict[str, float]:
        """What every tracker gets at each logging step: compute spent, its share of the budget, data seen."""
        return {"flops_spent": self.flops, "budget_fraction": self.flops / self.budget if self.budget else 0.0,
                "pairs_seen": self.pairs, "tokens_seen": self.tokens}

    def saved(self) -> dict[str, Any]:
        """What a checkpoint keeps (totals, the loss curve, the learning rates and the dev curve)."""
        return {"totals": {"flops": self.flops, "padded": self.padded, "tokens": self.tokens, "pairs": self.pairs,
                           "eval_flops": self.eval_flops},
                "losses": list(self.losses), "lrs": list(self.lrs), "dev": list(self.dev)}

    def restore(self, saved: dict[str, Any]) -> None:
        """Continue from :meth:`saved` output."""
        t = saved["totals"]
        self.flops, self.padded = float(t["flops"]), float(t["padded"])
        self.tokens, self.pairs = int(t["tokens"]), int(t["pairs"])
        self.losses = [float(x) for x in saved["losses"]]
        self.lrs = [float(x) for x in saved.get("lrs", [])]  # checkpoints written before LRs were kept lack them
        self.dev = [dict(p) for p in saved.get("dev", [])]
        self.eval_flops = float(t.get("eval_flops", 0.0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for debugging and tests)."""
        return asdict(self)
