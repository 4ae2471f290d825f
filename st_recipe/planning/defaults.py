"""The planner's facts and rules (``recipes/defaults.yaml``): one typed owner, read and checked once.

Each field of :class:`Defaults` is one top-level key of the file, in its order, and each nested class one of its
sections; a value the file sources is a :class:`Sourced` (value + provenance). :func:`read_defaults` builds the
object from the field types, so a missing, unknown or wrongly typed key is a one-line :class:`StRecipeError`
naming the key and the file, and no key of the file goes unread. Methods sit below planning (tests/test_layout.py)
and never see this object: the planner hands each method the plain values it plans with
(:meth:`Defaults.method_settings`).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar, Union

from st_recipe.errors import StRecipeError
from st_recipe.planning.recipes import read_structured, registry_dir
from st_recipe.provenance import SOURCES, Provenance

T = TypeVar("T")
VERSION = 1  # the layout of defaults.yaml this module reads


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A value and where it comes from; ``note`` is the file's ``note`` (or ``rule``) text."""

    value: T
    source: str
    note: str = ""

    @property
    def provenance(self) -> Provenance:
        """The value's provenance, as a recipe field carries it."""
        return Provenance(self.source, self.note)


@dataclass(frozen=True)
class LoraSettings:
    """``lora``: the paper's LoRA arguments (the planned ``lora`` method)."""

    r: Sourced[int]
    alpha: Sourced[int | float]  # passed to LoRA as written (8 stays 8 in recipes)
    dropout: Sourced[float]


@dataclass(frozen=True)
class UnknownLrRule:
    """``unknown_pretrain_lr``: the LR rule for a model whose pretraining LR is not known."""

    source: str
    fallback: float
    rule: str
    scale: Sourced[float] | None = None  # a measured multiplier on the borrowed LR (1 when absent)


@dataclass(frozen=True)
class ModelSizeRule:
    """``model_size``: the largest model with at least ``tokens_per_param`` planned tokens per parameter."""

    source: str
    tokens_per_param: float
    rule: str


@dataclass(frozen=True)
class MemoryRule:
    """``memory``: what the planner tries under a memory cap (GradCache mini-batches, then block freezing)."""

    source: str
    freeze_fractions: tuple[float, ...]
    mini_batch_sizes: tuple[int, ...]
    rule: str


@dataclass(frozen=True)
class Defaults:
    """``recipes/defaults.yaml``, typed: one field per top-level key."""

    version: int
    paper: str
    budgets: tuple[float, ...]  # the paper's x4 grid
    method_crossover: Sourced[float]
    method_below: Sourced[str]
    method_above: Sourced[str]
    lora: LoraSettings
    batch_size: Sourced[int]
    temperature: Sourced[float]
    max_seq_length: Sourced[int]
    weight_decay: Sourced[float]
    warmup_ratio: Sourced[float]
    schedule: Sourced[str]
    pooling: Sourced[str]
    lr_divisor: Sourced[float]
    unknown_pretrain_lr: UnknownLrRule
    tokens_per_pair: Sourced[float]
    seed: Sourced[int]
    attention: Sourced[str]
    prompts: Sourced[Mapping[str, str]]
    include_prompt: Sourced[bool]
    matryoshka_dims: Sourced[tuple[int, ...] | None]
    hard_negatives: Sourced[int]
    negative_tokens: Sourced[float]
    model_size: ModelSizeRule
    memory: MemoryRule

    def method_settings(self, method: str) -> dict[str, Any]:
        """The arguments the planner gives ``method`` when the user names none (none for methods the file omits)."""
        if method == "lora":
            return {"r": self.lora.r.value, "alpha": self.lora.alpha.value, "dropout": self.lora.dropout.value}
        if method == "freeze":
            return {"fraction": self.memory.freeze_fractions[0]}
        return {}


@lru_cache(maxsize=1)
def load_defaults() -> Defaults:
    """The planner's facts and rules, read once from the registry's ``defaults.yaml``."""
    return read_defaults(registry_dir() / "defaults.yaml")


def read_defaults(path: Path) -> Defaults:
    """:class:`Defaults` from a defaults YAML file, or a one-line error naming the bad key and the file."""
    out = _build(Defaults, read_structured(path), "", _Where(path))
    if out.version != VERSION:
        raise StRecipeError(f"{path}: 'version' must be {VERSION}, not {out.version!r}")
    if not out.memory.freeze_fractions:
        raise StRecipeError(f"{path}: 'memory.freeze_fractions' must list at least one fraction")
    return out


@dataclass(frozen=True)
class _Where:
    path: Path

    def fail(self, key: str, problem: str) -> StRecipeError:
        return StRecipeError(f"{self.path}: {f'{key!r} ' if key else ''}{problem}")


_WANT = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _build(tp: Any, data: Any, key: str, where: _Where) -> Any:
    """``data`` (parsed YAML at ``key``) as type ``tp``: a scalar, tuple, mapping, union, Sourced or dataclass."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return _build_union(args, data, key, where)
    if origin is Sourced:
        return _build_sourced(args[0], data, key, where)
    if origin is tuple:
        if not isinstance(data, list):
            raise where.fail(key, f"must be a list, not {data!r}")
        return tuple(_build(args[0], v, f"{key}[{i}]", where) for i, v in enumerate(data))
    if origin is Mapping:
        if not isinstance(data, dict):
            raise where.fail(key, f"must be a mapping, not {data!r}")
        return types.MappingProxyType({_build(args[0], k, key, where): _build(args[1], v, f"{key}.{k}", where)
                                       for k, v in data.items()})
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, data, key, where)
    return _scalar(tp, data, key, where)


def _scalar(tp: type, data: Any, key: str, where: _Where) -> Any:
    """An int, float (an integer becomes a float), str or bool, checked."""
    if tp is float and isinstance(data, (int, float)) and not isinstance(data, bool) and math.isfinite(data):
        return float(data)
    if isinstance(data, tp) and not (tp is int and isinstance(data, bool)):
        return data
    hint = " (YAML 1.1 reads 1e16 as text: write 1.0e+16)" if tp is float and isinstance(data, str) else ""
    raise where.fail(key, f"must be {_WANT[tp]}, not {data!r}{hint}")


def _build_union(args: tuple[Any, ...], data: Any, key: str, where: _Where) -> Any:
    """The first member of ``X | Y | None`` that ``data`` fits (None only where the union allows it)."""
    if data is None and type(None) in args:
        return None
    members = [a for a in args if a is not type(None)]
    for member in members[:-1]:
        try:
            return _build(member, data, key, where)
        except StRecipeError:
            continue
    try:
        return _build(members[-1], data, key, where)
    except StRecipeError:
        if len(members) == 1:
            raise
        want = " or ".join(_WANT.get(m, getattr(m, "__name__", str(m))) for m in members)
        raise where.fail(key, f"must be {want}, not {data!r}") from None


def _build_sourced(value_type: Any, data: Any, key: str, where: _Where) -> Sourced[Any]:
    """``{value, source, note}`` (or ``rule`` in place of ``note``) as a :class:`Sourced`."""
    _check_keys(data, {"value", "source", "note", "rule"}, key, where)
    if "note" in data and "rule" in data:
        raise where.fail(key, "gives both 'note' and 'rule': keep one")
    for name in ("value", "source"):
        if name not in data:
            raise where.fail(_join(key, name), "is missing")
    note_key = "rule" if "rule" in data else "note"
    return Sourced(_build(value_type, data["value"], _join(key, "value"), where),
                   _source(data["source"], _join(key, "source"), where),
                   _build(str, data.get(note_key, ""), _join(key, note_key), where))


def _build_dataclass(cls: type, data: Any, key: str, where: _Where) -> Any:
    """One section: every field read (a missing one without a default is an error), no unknown key allowed."""
    fields = dataclasses.fields(cls)
    _check_keys(data, {f.name for f in fields}, key, where)
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields:
        sub = _join(key, f.name)
        if f.name not in data:
            if f.default is dataclasses.MISSING:
                raise where.fail(sub, "is missing")
            continue
        values[f.name] = (_source(data[f.name], sub, where) if f.name == "source"
                          else _build(hints[f.name], data[f.name], sub, where))
    return cls(**values)


def _check_keys(data: Any, known: set[str], key: str, where: _Where) -> None:
    if not isinstance(data, dict):
        raise where.fail(key, f"must be a mapping of keys, not {data!r}")
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise where.fail(_join(key, unknown[0]), f"is not a known key here (known: {', '.join(sorted(known))})")


def _source(data: Any, key: str, where: _Where) -> str:
    if data not in SOURCES:
        raise where.fail(key, f"must be one of {', '.join(SOURCES)}, not {data!r}")
    return data


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name
