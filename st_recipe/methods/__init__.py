"""Registry of fine-tuning methods: name -> Method class.

Adding a method is one file plus one line in ``_BUILTIN``; third-party packages register theirs under
the ``st_recipe.methods`` entry-point group (``name = "package.module:Class"``).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.methods.base import Method, ParamReport

_BUILTIN: dict[str, str] = {
    "full": "st_recipe.methods.full:Full",
    "freeze": "st_recipe.methods.freeze:Freeze",
    "bias": "st_recipe.methods.bias:Bias",
    "lora": "st_recipe.methods.lora:LoRA",
    "propulsion": "st_recipe.methods.propulsion:Propulsion",
    "peft": "st_recipe.methods.peft_tuners:Peft",
}
_REGISTERED: dict[str, type[Method]] = {}
ENTRY_POINT_GROUP = "st_recipe.methods"

__all__ = ["Method", "ParamReport", "get_method", "get_method_class", "list_methods", "register_method", "parse_method_args"]


def register_method(cls: type[Method]) -> type[Method]:
    """Register a Method subclass under its ``name`` (usable as a class decorator)."""
    if not cls.name:
        raise StRecipeError(f"{cls.__name__} has no name")
    _REGISTERED[cls.name] = cls
    return cls


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def list_methods() -> list[str]:
    """Names of every available method: built-in, registered and from entry points."""
    return sorted(set(_BUILTIN) | set(_REGISTERED) | set(_entry_points()))


def get_method_class(name: str) -> type[Method]:
    """The Method class registered under ``name``."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTIN:
        module, attr = _BUILTIN[name].split(":")
        return getattr(importlib.import_module(module), attr)
    eps = _entry_points()
    if name in eps:
        cls = eps[name].load()
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise StRecipeError(f"entry point {name!r} does not name a st_recipe Method subclass")
        return cls
    from st_recipe.models.catalog import suggest

    raise StRecipeError(f"unknown method {name!r}{suggest(name, list_methods())}")


def get_method(name: str, **args: Any) -> Method:
    """An instance of the method ``name`` with validated arguments."""
    cls = get_method_class(name)
    fields = {f.name for f in dataclasses.fields(cls)}
    if "options" in fields:
        # Generic PEFT: unknown keywords are options of the PEFT config.
        known = {k: v for k, v in args.items() if k in fields}
        extra = {k: v for k, v in args.items() if k not in fields}
        if extra:
            known["options"] = {**known.get("options", {}), **extra}
        args = known
    unknown = sorted(set(args) - fields)
    if unknown:
        allowed = ", ".join(sorted(fields)) or "none"
        raise StRecipeError(f"method {name!r} has no argument {', '.join(unknown)} (its arguments: {allowed})")
    # Bools only: each method's validate() already words its numeric checks (rank r >= 1, ...).
    check_option_types(name, [f for f in dataclasses.fields(cls) if isinstance(f.default, bool)], args)
    return cls(**args)


def check_option_types(owner: str, fields: Any, given: dict[str, Any]) -> None:
    """Raise unless each given value has the type of its field's default (true/false for a bool, ...).

    Without this a YAML string such as ``use_dora=maybe`` is truthy and silently switches the option on.
    """
    for f in fields:
        if f.name not in given or isinstance(f.default, dataclasses._MISSING_TYPE) or f.default is None:
            continue
        value, default = given[f.name], f.default
        if isinstance(default, bool):
            ok, want = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif isinstance(default, float):
            ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        else:
            continue
        if not ok:
            raise StRecipeError(f"{owner}: {f.name} must be {want}, not {value!r}")


def parse_method_args(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Turn CLI ``key=value`` strings into typed arguments (YAML scalars: 32, 0.5, true, [a, b])."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise StRecipeError(f"method argument {pair!r} is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and "," in value:
            value = [v.strip() for v in value.split(",") if v.strip()]
        out[key] = value
    return out
