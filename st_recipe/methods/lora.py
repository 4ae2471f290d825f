"""LoRA with the paper's defaults (r=32, alpha=8, no dropout, attention/MLP projections and the input embedding)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from st_recipe.methods.base import check_int, check_number, check_targets_arg
from st_recipe.methods.peft_tuners import PeftAdapter
from st_recipe.models.architecture import default_targets


@dataclass
class LoRA(PeftAdapter):
    """Low-rank adapters, merged into the base weights before saving."""

    name = "lora"
    summary = "LoRA adapters (paper default r=32, alpha=8 on projections and input embedding)"
    cost_formula = "4N + 2N_t"

    sweep_axis = ("r", (32,))
    citation = (
        "@inproceedings{hu2022lora,\n  title={LoRA: Low-Rank Adaptation of Large Language Models},\n  "
        "author={Hu, Edward J. and Shen, Yelong and Wallis, Phillip and Allen-Zhu, Zeyuan and Li, Yuanzhi and "
        "Wang, Shean and Wang, Lu and Chen, Weizhu},\n  booktitle={ICLR},\n  year={2022}\n}"
    )

    r: int = 32
    alpha: float = 8.0
    dropout: float = 0.0
    targets: tuple[str, ...] | None = None
    use_dora: bool = False

    def validate(self) -> None:
        """rank >= 1, alpha > 0, 0 <= dropout < 1, targets a non-empty list of names."""
        check_int(self.r, "rank r", self.name)
        check_number(self.alpha, "alpha", self.name, low=0.0)
        check_number(self.dropout, "dropout", self.name, low=0.0, high=1.0, low_inclusive=True, high_inclusive=False)
        self.targets = check_targets_arg(self.targets, self.name)

    def args(self) -> dict[str, Any]:
        """r, alpha, dropout, targets (None = architecture default), use_dora."""
        return {
            "r": self.r,
            "alpha": self.alpha,
            "dropout": self.dropout,
            "targets": list(self.targets) if self.targets is not None else None,
            "use_dora": self.use_dora,
        }

    def build_config(self, model: Any = None) -> Any:
        """A ``peft.LoraConfig`` for the model (targets resolved against its architecture)."""
        from peft import LoraConfig

        targets = self.targets
        if targets is None and model is not None:
            targets = default_targets(model)
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(targets) if targets else None,
            use_dora=self.use_dora,
            bias="none",
        )

    def activation_rule(self, spec: Any) -> Any:
        """Adapter inputs (the linear inputs full FT keeps) + the rank-r intermediates: 18h + 4r per block.

        lora_B reads each of the four projections' r-wide output (4r), the embedding's adapter r once; a
        dropout > 0 adds its one-byte masks; DoRA also keeps the base and adapter outputs of each layer for
        the magnitude gradient, 2·(5h + f) more.
        """
        from st_recipe.models.activations import ActivationRule, block_pieces

        b = block_pieces(spec)
        per_layer = b.propagate + b.linear_inputs + 4 * self.r
        if self.use_dora:
            per_layer += 2 * b.outputs
        masks = b.linear_inputs if self.dropout > 0 else 0
        return ActivationRule(per_layer, b.h + self.r, mask_bytes_per_layer=masks,
                              why="adapter inputs (as full FT) + rank-r intermediates")

    @classmethod
    def planned(cls, **settings: Any) -> tuple[Any, Any]:
        """The paper's LoRA settings (r, alpha, dropout), passed in by the planner from defaults.yaml."""
        from st_recipe.provenance import Provenance

        method = cls(**settings)
        return method, Provenance("paper", f"r={method.r}, alpha={method.alpha:g}, dropout {method.dropout:g} on the "
                                           "projections and input embedding (authors' code)")

    def predict_params(self, spec: Any) -> tuple[int, int] | None:
        """Default GPT-NeoX targets: r·(in + out) per adapted projection, 16·r·h per block (+ DoRA magnitudes)."""
        if self.targets is not None:
            return None
        h, layers = spec.hidden_size, spec.num_layers
        trainable = layers * 16 * self.r * h + (layers * 9 * h if self.use_dora else 0)
        return spec.n_params + trainable, trainable
