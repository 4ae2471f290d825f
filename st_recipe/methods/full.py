"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from st_recipe.methods.base import Method, ParamReport, set_trainable
from st_recipe.models.architecture import hf_model


@dataclass
class Full(Method):
    """Train every parameter, embeddings included."""

    name = "full"
    summary = "full fine-tuning: every parameter trains"
    cost_formula = "6N"
    trains_embeddings = True

    def apply(self, st_model: Any) -> ParamReport:
        """Make every parameter trainable."""
        set_trainable(hf_model(st_model), lambda _name: True)
        return self.report(st_model)

    def predict_params(self, spec: Any) -> tuple[int, int] | None:
        """Everything trains: N_t = N."""
        return spec.n_params, spec.n_params

    def activation_rule(self, spec: Any) -> Any:
        """Every linear layer's input (for its weight gradient) plus what propagating gradients needs: 18h for f = 4h."""
        from st_recipe.models.activations import ActivationRule, block_pieces

        b = block_pieces(spec)
        return ActivationRule(b.propagate + b.linear_inputs, b.h, why="every linear input (weight gradients) + norms, attention, GELU")

    @classmethod
    def planned(cls, **settings: Any) -> tuple[Any, Any]:
        """Full fine-tuning has no arguments; it is the paper's method below the crossover."""
        from st_recipe.provenance import Provenance

        return cls(**settings), Provenance("paper", "full fine-tuning has no arguments")

    def flops_per_token(self, n_params: int, n_trainable: int) -> float:
        """6N: forward 2N, backward 4N (activation and weight gradients through every layer)."""
        return 6.0 * n_params
