"""The Method contract shared by every fine-tuning method, and the parameter bookkeeping they report."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from st_recipe.errors import StRecipeError
from st_recipe.models.architecture import ParamReport, count_params, hf_model, match_modules


def set_trainable(model: Any, predicate: Any) -> None:
    """Make exactly the parameters whose name satisfies ``predicate`` trainable."""
    for name, p in model.named_parameters():
        p.requires_grad_(bool(predicate(name)))


def check_targets(model: Any, targets: tuple[str, ...] | list[str], method: str) -> None:
    """Raise if any target matches no module (a typo would otherwise silently train less)."""
    missing = [t for t, hits in match_modules(model, targets).items() if not hits]
    if missing:
        leaves = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if n and not list(m.children())})
        raise StRecipeError(
            f"{method} targets {', '.join(map(repr, missing))} match no module of "
            f"{type(model).__name__} (leaf module names: {', '.join(leaves[:20])})"
        )


@dataclass
class Method:
    """A fine-tuning method: which parameters train, what a token costs, and how to merge.

    Subclasses are dataclasses whose fields are the method's arguments; they validate them in
    ``validate`` with one-line :class:`StRecipeError` messages.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    # The per-token training cost as the paper writes it (N, N_t non-embedding parameters).
    cost_formula: ClassVar[str] = ""
    # Whether the input embedding trains (it then needs gradients and optimizer state of its own).
    trains_embeddings: ClassVar[bool] = False
    # The argument a sweep varies, and its values when the user names none (None: no axis).
    sweep_axis: ClassVar[tuple[str, tuple[Any, ...]] | None] = None
    # What a model card cites for the method (BibTeX); empty when the method is the paper's own.
    citation: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the arguments (one-line errors)."""

    def args(self) -> dict[str, Any]:
        """The method's arguments as a JSON-ready dict."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def apply(self, st_model: Any) -> ParamReport:
        """Make exactly this method's parameters trainable (injecting layers if needed)."""
        raise NotImplementedError

    def merge(self, st_model: Any) -> Any:
        """Fold anything injected into plain weights; the model is then a plain transformers model."""
        return st_model

    def flops_per_token(self, n_params: int, n_trainable: int) -> float:
        """Training FLOPs per token (forward + backward) from non-embedding counts N and N_t."""
        raise NotImplementedError

    def predict_params(self, spec: Any) -> tuple[int, int] | None:
        """(N, N_t) for a catalogue shape without building the model; None if there is no closed form."""
        return None

    def check_shape(self, spec: Any) -> None:
        """Refuse a model this method cannot apply to, from its shape alone (before torch builds anything)."""

    def report(self, st_model: Any) -> ParamReport:
        """Current parameter counts of the model under this method."""
        return count_params(hf_model(st_model), self.name)

    def gradient_layers(self, n_layers: int) -> int:
        """How many of the ``n_layers`` blocks gradients flow through (all, unless the lower ones are frozen)."""
        return n_layers

    def activation_rule(self, spec: Any) -> Any:
        """Values autograd saves per token and block under this method (memory estimates).

        The default, for methods with no rule of their own, is conservative: an adapter may read its
        layer's input (as LoRA, LoHa, LoKr do) and scale or mix its output (as IA3, VeRA, DoRA do), so
        both are counted: 10h + 2f + 5h + f = 15h + 3f per block.
        """
        from st_recipe.models.activations import ActivationRule, block_pieces

        b = block_pieces(spec)
        return ActivationRule(b.propagate + b.linear_inputs + b.outputs, b.h,
                              why="heuristic for adapters without a rule: linear inputs and outputs both kept")

    @classmethod
    def planned(cls, **settings: Any) -> tuple[Any, Any]:
        """The instance the planner uses when the user names this method without arguments, and its provenance.

        ``settings`` are the arguments the planner's defaults (recipes/defaults.yaml) give this method, as plain
        values: methods sit below planning and never read the defaults themselves.
        """
        from st_recipe.provenance import Provenance

        return cls(**settings), Provenance("heuristic", f"{cls.name}'s default arguments")

    def describe(self) -> str:
        """``name(arg=value, ...)`` for logs and cards."""
        inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in self.args().items())
        return f"{self.name}({inner})"


def check_targets_arg(targets: Any, method: str) -> tuple[str, ...] | None:
    """Normalise a targets argument (None, a comma-separated string or a list) to a non-empty tuple or None."""
    if targets is None:
        return None
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    targets = tuple(str(t) for t in targets)
    if not targets:
        raise StRecipeError(f"{method}: targets must name at least one module")
    return targets


def check_int(value: Any, name: str, method: str, minimum: int = 1) -> None:
    """Raise unless value is an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise StRecipeError(f"{method}: {name} must be an integer >= {minimum}, not {value!r}")


def check_number(value: Any, name: str, method: str, *, low: float, high: float | None = None,
                 low_inclusive: bool = False, high_inclusive: bool = True) -> None:
    """Raise unless value is a finite number in the given interval."""
    import math

    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if not ok:
        lo = f"{'>=' if low_inclusive else '>'} {low:g}"
        hi = f" and {'<=' if high_inclusive else '<'} {high:g}" if high is not None else ""
        raise StRecipeError(f"{method}: {name} must be a number {lo}{hi}, not {value!r}")
