"""Any PEFT tuner that can be merged into plain weights (IA3, LoHa, LoKr, VeRA, DoRA, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.methods.base import Method, ParamReport, check_targets
from st_recipe.models.architecture import hf_model, set_hf_model

_DEFAULT_TYPE = "ia3"
_PROMPT_LEARNING = {"PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING", "MULTITASK_PROMPT_TUNING", "ADAPTION_PROMPT", "CPT"}
PROMPT_LEARNING_REASON = (
    "prompt and prefix tuning are not supported: sentence-transformers cannot load them, and prompt tuning "
    "adds virtual positions that mean pooling would average as if they were text"
)


def _peft_type(name: str) -> Any:
    from peft import PeftType

    key = name.strip().upper().replace("-", "_")
    try:
        return PeftType(key)
    except ValueError:
        from st_recipe.models.catalog import suggest

        choices = sorted(t.value.lower() for t in PeftType if t.value not in _PROMPT_LEARNING)
        # A high cutoff: at 0.5 'bogus' was offered 'osf', which helps no one; the list does.
        raise StRecipeError(f"peft: unknown PEFT type {name!r}{suggest(name.lower(), choices, cutoff=0.75)}") from None


@dataclass
class PeftAdapter(Method):
    """Shared machinery for methods built on a PEFT config: inject, count, merge."""

    cost_formula = "4N + 2N_t"

    def build_config(self, model: Any = None) -> Any:
        """The PEFT config object for this method (``model`` lets defaults follow the architecture)."""
        raise NotImplementedError

    def apply(self, st_model: Any) -> ParamReport:
        """Inject the adapter; only its parameters train."""
        from peft import get_peft_model
        from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING

        model = hf_model(st_model)
        cfg = self.build_config(model)
        ptype = getattr(cfg.peft_type, "value", cfg.peft_type)
        tuner = PEFT_TYPE_TO_TUNER_MAPPING.get(ptype)
        if tuner is not None and not hasattr(tuner, "merge_and_unload"):
            raise StRecipeError(f"{self.name}: {ptype} adapters cannot be merged into plain weights, so they cannot be published")
        targets = getattr(cfg, "target_modules", None)
        if isinstance(targets, (list, tuple, set)) and targets:
            check_targets(model, tuple(targets), self.name)
        try:
            peft_model = get_peft_model(model, cfg)
        except (ValueError, TypeError, KeyError) as exc:
            raise StRecipeError(f"{self.name}: cannot apply {ptype} to {type(model).__name__}: {_first_line(exc)}") from exc
        set_hf_model(st_model, peft_model)
        return self.report(st_model)

    def merge(self, st_model: Any) -> Any:
        """Fold the adapter into the base weights and drop the PEFT wrapper."""
        model = hf_model(st_model)
        if hasattr(model, "merge_and_unload"):
            merged = model.merge_and_unload()
            set_hf_model(st_model, merged)
            # A merged model must not claim to carry an adapter when saved.
            for attr in ("peft_config", "_hf_peft_config_loaded"):
                if attr in getattr(merged, "__dict__", {}):
                    delattr(merged, attr)
        return st_model

    def flops_per_token(self, n_params: int, n_trainable: int) -> float:
        """4N + 2N_t, as for LoRA.

        Adapters sit in every block, so the backward pass still computes activation gradients through
        all N weights (2N) but weight gradients only for the N_t adapter parameters (2N_t). The adapters'
        own forward cost is inside N, which is counted after injection.
        """
        return 4.0 * n_params + 2.0 * n_trainable


@dataclass
class Peft(PeftAdapter):
    """A PEFT config applied with ``peft.get_peft_model`` and merged with ``merge_and_unload``.

    Give ``peft_type`` (``ia3``, ``loha``, ``lokr``, ``vera``, ``lora`` with ``use_dora=True``, ...) and
    the config's options, or a ready ``config`` object.
    """

    name = "peft"
    summary = "any mergeable PEFT config (IA3, LoHa, LoKr, VeRA, DoRA, ...)"

    peft_type: str = _DEFAULT_TYPE
    options: dict[str, Any] = field(default_factory=dict)
    config: Any = None

    def validate(self) -> None:
        """Build the config once so bad options fail before any model is touched.

        The default (IA3 with no options) is known to build, and building it would import peft and torch
        (seconds) just to list the methods, so only user-given settings are checked here.
        """
        if not isinstance(self.options, dict):
            raise StRecipeError(f"peft: options must be a mapping of PEFT config options, not {self.options!r}")
        if not isinstance(self.peft_type, str) or not self.peft_type.strip():
            raise StRecipeError(f"peft: peft_type must name a PEFT type such as ia3, loha or lokr, not {self.peft_type!r}")
        if self.config is None and not self.options and self.peft_type == _DEFAULT_TYPE:
            return
        self.build_config()

    def activation_rule(self, spec: Any) -> Any:
        """IA3 with PEFT's default targets has a rule; any other config gets the base class's conservative one.

        IA3 scales attention outputs and the MLP down projection's input; each multiplication keeps the
        scaled tensor for its scale's gradient, on top of what propagating gradients needs (bias's set):
        on GPT-NeoX the fused qkv output (3h) and the activation output (f), and in the lowest block nothing
        below the qkv scaling needs a gradient, so its norm and MLP inputs (h + f) go; on Llama-family
        models the k and v outputs (2 × kv width) and the down projection's input (f).
        """
        from st_recipe.models.activations import ActivationRule, block_pieces

        if not self.is_default_ia3():
            return super().activation_rule(spec)
        b = block_pieces(spec)
        if getattr(spec, "model_type", "gpt_neox") == "gpt_neox":
            return ActivationRule(b.propagate + 3 * b.h + b.f, b.h, first_block_less=b.h + b.f,
                                  why="bias's set + the scaled qkv output and GELU output")
        kv = spec.num_kv_heads * spec.head_dim
        return ActivationRule(b.propagate + 2 * kv + b.f, b.h, why="bias's set + the scaled k, v outputs and down input")

    def is_default_ia3(self) -> bool:
        """True for IA3 with PEFT's default targets (the one generic config with closed-form counts and rules)."""
        if self.config is not None:
            ptype = str(getattr(self.config.peft_type, "value", self.config.peft_type)).upper()
            targets, ff = getattr(self.config, "target_modules", None), getattr(self.config, "feedforward_modules", None)
        else:
            ptype = self.peft_type.strip().upper().replace("-", "_")
            targets, ff = self.options.get("target_modules"), self.options.get("feedforward_modules")
        return ptype == "IA3" and not targets and not ff

    def predict_params(self, spec: Any) -> tuple[int, int] | None:
        """Default IA3 on a GPT-NeoX shape scales the qkv output and the MLP down input: 3h + f per block."""
        if not self.is_default_ia3():
            return None
        trainable = spec.num_layers * (3 * spec.hidden_size + spec.intermediate_size)
        return spec.n_params + trainable, trainable

    def args(self) -> dict[str, Any]:
        """The PEFT type and the options (a ready config object is shown as its dict)."""
        if self.config is not None:
            cfg = self.config.to_dict()
            return {"peft_type": str(cfg.get("peft_type")), "options": _jsonable(cfg)}
        return {"peft_type": self.peft_type, "options": _jsonable(self.options)}

    def build_config(self, model: Any = None) -> Any:
        """The PEFT config object for this method."""
        if self.config is not None:
            cfg = self.config
        else:
            from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

            ptype = _peft_type(self.peft_type)
            if ptype.value in _PROMPT_LEARNING:
                raise StRecipeError(f"peft: {self.peft_type}: {PROMPT_LEARNING_REASON}")
            cls = PEFT_TYPE_TO_CONFIG_MAPPING[ptype]
            import dataclasses

            from st_recipe.methods import check_option_types

            check_option_types(f"peft ({self.peft_type})", dataclasses.fields(cls), self.options)
            try:
                cfg = cls(**self.options)
            except (TypeError, ValueError) as exc:
                raise StRecipeError(f"peft: invalid {self.peft_type} options {self.options}: {_first_line(exc)}") from exc
        if getattr(cfg, "is_prompt_learning", False):
            raise StRecipeError(f"peft: {cfg.peft_type}: {PROMPT_LEARNING_REASON}")
        return cfg


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in (sorted(value) if isinstance(value, set) else value)]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(getattr(value, "value", value))
