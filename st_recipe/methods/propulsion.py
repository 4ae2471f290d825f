"""Propulsion (Kowsher et al. 2024): each adapted layer's output V becomes V * z**k, z trainable, init ones.

Implemented here with a parameter on each adapted module and a forward hook, so module names and the
state-dict layout stay those of the base model; ``merge`` folds z**k into the weights exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.methods.base import (
    Method,
    ParamReport,
    check_number,
    check_targets,
    check_targets_arg,
    set_trainable,
)
from st_recipe.models.architecture import default_targets, hf_model, match_modules

Z_NAME = "propulsion_z"
_HOOKS = "_propulsion_hooks"


def _scale(module: Any, degree: float) -> Any:
    z = getattr(module, Z_NAME)
    return z**degree


def _make_hook(degree: float) -> Any:
    def hook(module: Any, _inputs: Any, output: Any) -> Any:
        # z**k, with dz**k/dz = k at z=1: the degree acts as a learning-rate multiplier on z.
        return output * _scale(module, degree).to(output.dtype)

    return hook


@dataclass
class Propulsion(Method):
    """Scale every adapted layer's output by z**degree; only the z vectors train."""

    name = "propulsion"
    summary = "Propulsion: a trainable output scale z**k on every linear layer and the input embedding"
    cost_formula = "4N + 2N_t"

    citation = (
        "@article{kowsher2024propulsion,\n  title={Propulsion: Steering LLM with Tiny Fine-Tuning},\n  "
        "author={Kowsher, Md and Prottasha, Nusrat Jahan and Bhat, Prakash},\n  journal={arXiv preprint "
        "arXiv:2409.10927},\n  year={2024}\n}"
    )

    degree: float = 15.0
    targets: tuple[str, ...] | None = None

    def validate(self) -> None:
        """degree > 0; targets a non-empty list of names when given."""
        check_number(self.degree, "degree", self.name, low=0.0)
        self.targets = check_targets_arg(self.targets, self.name)

    def args(self) -> dict[str, Any]:
        """degree and targets (None = every linear layer and the input embedding)."""
        return {"degree": self.degree, "targets": list(self.targets) if self.targets is not None else None}

    def adapted_modules(self, model: Any) -> list[tuple[str, Any]]:
        """The (name, module) pairs this method scales."""
        import torch

        targets = self.targets or default_targets(model)
        check_targets(model, targets, self.name)
        names = sorted({n for hits in match_modules(model, targets).values() for n in hits})
        modules = dict(model.named_modules())
        out = []
        for n in names:
            mod = modules[n]
            if not isinstance(mod, (torch.nn.Linear, torch.nn.Embedding)):
                raise StRecipeError(f"propulsion: target {n!r} is a {type(mod).__name__}, not a linear layer or embedding")
            out.append((n, mod))
        return out

    def apply(self, st_model: Any) -> ParamReport:
        """Freeze the base model and attach a ones-initialised z to each adapted layer's output."""
        import torch

        model = hf_model(st_model)
        if getattr(model, _HOOKS, None):
            raise StRecipeError("propulsion: already applied to this model")
        adapted = self.adapted_modules(model)
        set_trainable(model, lambda _n: False)
        hooks = []
        for _name, mod in adapted:
            size = mod.out_features if isinstance(mod, torch.nn.Linear) else mod.embedding_dim
            ref = mod.weight
            mod.register_parameter(Z_NAME, torch.nn.Parameter(torch.ones(size, device=ref.device, dtype=torch.float32)))
            hooks.append(mod.register_forward_hook(_make_hook(float(self.degree))))
        setattr(model, _HOOKS, hooks)
        return self.report(st_model)

    def merge(self, st_model: Any) -> Any:
        """W <- diag(z**k) W, b <- z**k * b; embedding columns scaled; hooks and z removed."""
        import torch

        model = hf_model(st_model)
        hooks = getattr(model, _HOOKS, None)
        if not hooks:
            return st_model
        for hook in hooks:
            hook.remove()
        with torch.no_grad():
            for mod in model.modules():
                if Z_NAME not in mod._parameters:
                    continue
                scale = _scale(mod, float(self.degree)).detach()
                w = mod.weight
                if isinstance(mod, torch.nn.Embedding):
                    w.copy_((w.float() * scale[None, :]).to(w.dtype))
                else:
                    w.copy_((w.float() * scale[:, None]).to(w.dtype))
                    if mod.bias is not None:
                        mod.bias.copy_((mod.bias.float() * scale).to(mod.bias.dtype))
                del mod._parameters[Z_NAME]
        delattr(model, _HOOKS)
        return st_model

    def activation_rule(self, spec: Any) -> Any:
        """Bias's set plus every scaled output V, which ``V * z**k`` keeps for z's gradient: 20h per block.

        Plus h once for the scaled input embedding (v is a view of the *scaled* qkv, already counted).
        """
        from st_recipe.models.activations import ActivationRule, block_pieces

        b = block_pieces(spec)
        return ActivationRule(b.propagate + b.outputs, 2 * b.h, why="bias's set + every scaled output V (for z's gradient)")

    def predict_params(self, spec: Any) -> tuple[int, int] | None:
        """Default GPT-NeoX targets: one z per projection output, 3h + h + 4h + h = 9h per block."""
        if self.targets is not None:
            return None
        trainable = spec.num_layers * 9 * spec.hidden_size
        return spec.n_params + trainable, trainable

    def flops_per_token(self, n_params: int, n_trainable: int) -> float:
        """4N + 2N_t, the same form as bias-only.

        The z vectors sit at every layer's output, so the backward pass computes activation gradients
        through all N weights (2N); z's own gradient is one multiply per output element, which the
        2N_t term covers (N_t = the sum of adapted output sizes, about 0.1 % of N). The forward-pass
        rescaling is one multiply per output element and is negligible next to 2N.
        """
        return 4.0 * n_params + 2.0 * n_trainable
