"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from st_recipe.methods.base import Method, ParamReport, hf_model, set_trainable


@dataclass
class Full(Method):
    """Train every parameter, embeddings included."""

    name = "full"
    summary = "full fine-tuning: every parameter trains"
    cost_formula = "6N"

    def apply(self, st_model: Any) -> ParamReport:
        """Make every parameter trainable."""
        set_trainable(hf_model(st_model), lambda _name: True)
        return self.report(st_model)

    def predict_params(self, spec: Any) -> tuple[int, int] | None:
        """Everything trains: N_t = N."""
        return spec.n_params, spec.n_params

    def flops_per_token(self, n_params: int, n_trainable: int) -> float:
        """6N: forward 2N, backward 4N (activation and weight gradients through every layer)."""
        return 6.0 * n_params
