"""Block freezing: the embeddings and the first blocks are frozen; the last k blocks and the final norm train."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.methods.base import (
    Method,
    ParamReport,
    check_int,
    check_number,
    set_trainable,
)
from st_recipe.models.architecture import embedding_param_names, find_blocks, hf_model


@dataclass
class Freeze(Method):
    """Train the last ``blocks`` blocks (or the last ``fraction`` of them) plus the final norm."""

    name = "freeze"
    summary = "block freezing: train the last k blocks and the final norm; embeddings frozen"
    cost_formula = "2N + 4N_t"

    sweep_axis = ("fraction", (0.5,))

    blocks: int | None = None
    fraction: float | None = None

    def validate(self) -> None:
        """Exactly one of blocks / fraction; blocks >= 1, 0 < fraction <= 1 (default fraction 0.5)."""
        if self.blocks is not None and self.fraction is not None:
            raise StRecipeError("freeze: give blocks or fraction, not both")
        if self.blocks is None and self.fraction is None:
            self.fraction = 0.5
        if self.blocks is not None:
            check_int(self.blocks, "blocks", self.name)
        else:
            check_number(self.fraction, "fraction", self.name, low=0.0, high=1.0)

    def trained_blocks(self, n_layers: int) -> int:
        """How many of ``n_layers`` blocks train."""
        if self.blocks is not None:
            if self.blocks > n_layers:
                raise StRecipeError(f"freeze: blocks={self.blocks} but the model has only {n_layers} blocks")
            return self.blocks
        return max(1, min(n_layers, math.ceil(self.fraction * n_layers - 1e-9)))  # type: ignore[operator]

    def gradient_layers(self, n_layers: int) -> int:
        """Only the trained top blocks are reached by gradients."""
        return self.trained_blocks(n_layers)

    def activation_rule(self, spec: Any) -> Any:
        """As full fine-tuning, in the trained blocks only (see ``gradient_layers``)."""
        from st_recipe.models.activations import ActivationRule, block_pieces

        b = block_pieces(spec)
        return ActivationRule(b.propagate + b.linear_inputs, b.h, why="every linear input (weight gradients) + norms, attention, GELU")

    @classmethod
    def planned(cls, **settings: Any) -> tuple[Any, Any]:
        """The planner's fraction (the first its memory rules try, passed in as ``fraction``), else 0.5."""
        from st_recipe.provenance import Provenance

        method = cls(**settings)
        what = f"{method.fraction:.0%}" if method.fraction is not None else str(method.blocks)
        return method, Provenance("heuristic", f"train the last {what} of the blocks")

    def apply(self, st_model: Any) -> ParamReport:
        """Freeze embeddings and the first blocks; train the last k blocks and everything after them."""
        model = hf_model(st_model)
        stack, n_layers = find_blocks(model)
        k = self.trained_blocks(n_layers)
        first_trained = n_layers - k
        emb = embedding_param_names(model)
        prefix = stack + "."

        def trains(name: str) -> bool:
            if name in emb:
                return False
            if name.startswith(prefix):
                return int(name[len(prefix) :].split(".", 1)[0]) >= first_trained
            # Outside the block stack and the embeddings: the final norm (and any head after it).
            return True

        set_trainable(model, trains)
        return self.report(st_model)

    def predict_params(self, spec: Any) -> tuple[int, int] | None:
        """k blocks of 12h² + 13h parameters plus the final norm's 2h."""
        h = spec.hidden_size
        return spec.n_params, self.trained_blocks(spec.num_layers) * (12 * h * h + 13 * h) + 2 * h

    def flops_per_token(self, n_params: int, n_trainable: int) -> float:
        """2N + 4N_t: forward through everything, backward only through the trained top blocks."""
        return 2.0 * n_params + 4.0 * n_trainable
