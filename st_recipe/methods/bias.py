"""Bias-only tuning (BitFit): every bias trains, layer-norm biases included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.methods.base import Method, ParamReport, hf_model, set_trainable


def _is_bias(name: str) -> bool:
    return name.endswith("bias")


@dataclass
class Bias(Method):
    """Train only the parameters named ``*bias``."""

    name = "bias"
    summary = "bias-only tuning (BitFit): every bias, layer-norm biases included"
    cost_formula = "4N + 2N_t"

    def apply(self, st_model: Any) -> ParamReport:
        """Make every bias trainable and everything else frozen; a model with no biases is an error."""
        model = hf_model(st_model)
        if not any(_is_bias(n) for n, _ in model.named_parameters()):
            raise StRecipeError(
                f"bias: {type(model).__name__} has no bias parameters (e.g. Llama-style models); choose another method"
            )
        set_trainable(model, _is_bias)
        return self.report(st_model)

    def predict_params(self, spec: Any) -> tuple[int, int] | None:
        """GPT-NeoX biases: 3h + h + 4h + h for the projections and 2h for the norms per block, plus h."""
        return spec.n_params, spec.num_layers * 11 * spec.hidden_size + spec.hidden_size

    def flops_per_token(self, n_params: int, n_trainable: int) -> float:
        """4N + 2N_t: biases sit in every layer, so activation gradients flow through all of them."""
        return 4.0 * n_params + 2.0 * n_trainable
