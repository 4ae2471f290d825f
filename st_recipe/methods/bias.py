"""Bias-only tuning (BitFit): every bias trains, layer-norm biases included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.methods.base import Method, ParamReport, set_trainable
from st_recipe.models.architecture import hf_model


def _is_bias(name: str) -> bool:
    return name.endswith("bias")


@dataclass
class Bias(Method):
    """Train only the parameters named ``*bias``."""

    name = "bias"
    summary = "bias-only tuning (BitFit): every bias, layer-norm biases included"
    cost_formula = "4N + 2N_t"
    citation = (
        "@inproceedings{zaken2022bitfit,\n  title={BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based "
        "Masked Language-models},\n  author={Ben Zaken, Elad and Goldberg, Yoav and Ravfogel, Shauli},\n  "
        "booktitle={ACL},\n  year={2022}\n}"
    )

    def apply(self, st_model: Any) -> ParamReport:
        """Make every bias trainable and everything else frozen; a model with no biases is an error."""
        model = hf_model(st_model)
        if not any(_is_bias(n) for n, _ in model.named_parameters()):
            raise StRecipeError(
                f"bias: {type(model).__name__} has no bias parameters (e.g. Llama-style models); choose another method"
            )
        set_trainable(model, _is_bias)
        return self.report(st_model)

    def check_shape(self, spec: Any) -> None:
        """A config that says there are no biases is refused now, as :meth:`apply` would after the model is built."""
        from st_recipe.models.shapes import has_biases

        if has_biases(spec) is False:
            raise StRecipeError(f"bias: {spec.name} ({spec.model_type}) has no bias parameters (e.g. Llama-style "
                                "models); choose another method")

    def activation_rule(self, spec: Any) -> Any:
        """No weight gradients, so no linear inputs: the norm input, attention and GELU input only (11h for f = 4h).

        A bias's own gradient is a sum of output gradients and needs no saved activation.
        """
        from st_recipe.models.activations import ActivationRule, block_pieces

        b = block_pieces(spec)
        return ActivationRule(b.propagate, b.h, why="no weight gradients: norm input, attention, GELU input only")

    @classmethod
    def planned(cls, **settings: Any) -> tuple[Any, Any]:
        """Bias-only tuning has no arguments (BitFit, one of the paper's methods)."""
        from st_recipe.provenance import Provenance

        return cls(**settings), Provenance("paper", "bias-only tuning has no arguments")

    def predict_params(self, spec: Any) -> tuple[int, int] | None:
        """GPT-NeoX biases: 3h + h + 4h + h for the projections and 2h for the norms per block, plus h."""
        return spec.n_params, spec.num_layers * 11 * spec.hidden_size + spec.hidden_size

    def flops_per_token(self, n_params: int, n_trainable: int) -> float:
        """4N + 2N_t: biases sit in every layer, so activation gradients flow through all of them."""
        return 4.0 * n_params + 2.0 * n_trainable
