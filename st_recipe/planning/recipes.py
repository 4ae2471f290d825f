"""The Recipe: one validated, serialisable training configuration in which every field carries its provenance.

Provenance sources: ``paper`` (stated by the paper or set in its code), ``derived`` (computed from the
paper's formulas), ``heuristic`` (our written rule), ``measured`` (chosen from our real-model benchmark,
bench/results/frontier.md), ``fitted`` (from the user's own sweep), ``user`` (a flag
or a hand-written file).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.provenance import Provenance


@dataclass
class Recipe:
    """A full training configuration; ``provenance`` has an entry for every field."""

    model: str
    method: str
    pairs: int
    method_args: dict[str, Any] = field(default_factory=dict)
    budget: float | None = None
    tokens_per_pair: float = 78
    batch_size: int = 1024
    mini_batch_size: int | None = None
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    warmup_ratio: float = 0.1
    temperature: float = 0.025
    max_seq_length: int = 75
    weight_decay: float = 0.1
    pooling: str = "mean"
    precision: str = "fp32"
    seed: int = 0
    attention: str = "causal"
    prompts: dict[str, str] = field(default_factory=dict)
    include_prompt: bool = True
    matryoshka_dims: list[int] | None = None
    hard_negatives: int = 0
    provenance: dict[str, Provenance] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # YAML 1.1 reads "1e-3" or "1.5e15" as strings; accept them where a number is meant.
        for name in ("budget", "learning_rate", "warmup_ratio", "temperature", "weight_decay", "tokens_per_pair"):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    setattr(self, name, float(value))
                except ValueError:
                    raise StRecipeError(f"{name} must be a number, not {value!r}") from None
        self.provenance = {k: v if isinstance(v, Provenance) else Provenance(**v) for k, v in self.provenance.items()}
        for name in self.field_names():
            self.provenance.setdefault(name, Provenance("user"))
        extra = set(self.provenance) - set(self.field_names())
        if extra:
            raise StRecipeError(f"provenance names unknown recipe fields: {', '.join(sorted(extra))}")
        self.validate()

    @staticmethod
    def field_names() -> list[str]:
        """The recipe's value fields (everything but provenance), in order."""
        return [f.name for f in dataclasses.fields(Recipe) if f.name != "provenance"]

    @property
    def tokens(self) -> int:
        """Planned training tokens: pairs × tokens per pair (both sides)."""
        return int(round(self.pairs * self.tokens_per_pair))

    @property
    def steps(self) -> int:
        """Optimizer steps to see ``pairs`` pairs at ``batch_size``."""
        return max(1, math.ceil(self.pairs / self.batch_size))

    def validate(self) -> None:
        """Check types and ranges; one-line errors."""
        from st_recipe.methods import get_method

        _check(isinstance(self.model, str) and self.model.strip() != "", "model must be a non-empty string")
        get_method(self.method, **self.method_args)
        _check(_is_int(self.pairs) and self.pairs >= 1, f"pairs must be an integer >= 1, not {self.pairs!r}")
        _check(_is_int(self.batch_size) and self.batch_size >= 2, f"batch_size must be an integer >= 2 (in-batch negatives need a pair of pairs), not {self.batch_size!r}")
        if self.mini_batch_size is not None:
            _check(_is_int(self.mini_batch_size) and 1 <= self.mini_batch_size <= self.batch_size,
                   f"mini_batch_size must be an integer in [1, batch_size={self.batch_size}], not {self.mini_batch_size!r}")
        if self.budget is not None:
            from st_recipe.costing.flops import check_budget

            self.budget = check_budget(self.budget)
        _check(_is_num(self.learning_rate) and 0 < self.learning_rate < 1, f"learning_rate must be in (0, 1), not {self.learning_rate!r}")
        _check(self.schedule in ("cosine", "linear", "constant"), f"schedule must be cosine, linear or constant, not {self.schedule!r}")
        _check(_is_num(self.warmup_ratio) and 0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), not {self.warmup_ratio!r}")
        _check(_is_num(self.temperature) and 0 < self.temperature <= 10, f"temperature must be in (0, 10], not {self.temperature!r}")
        _check(_is_int(self.max_seq_length) and self.max_seq_length >= 2, f"max_seq_length must be an integer >= 2, not {self.max_seq_length!r}")
        _check(_is_num(self.weight_decay) and self.weight_decay >= 0, f"weight_decay must be >= 0, not {self.weight_decay!r}")
        _check(_is_num(self.tokens_per_pair) and self.tokens_per_pair > 0, f"tokens_per_pair must be > 0, not {self.tokens_per_pair!r}")
        _check(self.pooling in ("mean", "lasttoken", "weightedmean"), f"pooling must be mean, lasttoken or weightedmean, not {self.pooling!r}")
        _check(self.precision in ("fp32", "bf16", "fp16"), f"precision must be fp32, bf16 or fp16, not {self.precision!r}")
        _check(_is_int(self.seed) and self.seed >= 0, f"seed must be an integer >= 0, not {self.seed!r}")
        _check(self.attention in ATTENTIONS, f"attention must be causal or bidirectional, not {self.attention!r}")
        check_prompts(self.prompts)
        _check(isinstance(self.include_prompt, bool), f"include_prompt must be true or false, not {self.include_prompt!r}")
        if self.matryoshka_dims is not None:
            self.matryoshka_dims = check_matryoshka_dims(self.matryoshka_dims)
        from st_recipe.data.pairs import check_negative_count

        check_negative_count(self.hard_negatives, "hard_negatives")

    def replace(self, source: str = "user", note: str = "", **changes: Any) -> "Recipe":
        """A copy with some fields changed, each marked with the given provenance."""
        unknown = set(changes) - set(self.field_names())
        if unknown:
            raise StRecipeError(f"unknown recipe field(s): {', '.join(sorted(unknown))}")
        prov = dict(self.provenance)
        for k in changes:
            prov[k] = Provenance(source, note)
        values = {k: getattr(self, k) for k in self.field_names()}
        values.update(changes)
        return Recipe(**values, provenance=prov)

    def to_dict(self) -> dict[str, Any]:
        """Values plus a ``provenance`` block, JSON/YAML-ready."""
        out: dict[str, Any] = {k: getattr(self, k) for k in self.field_names()}
        out["method_args"] = dict(self.method_args)
        out["prompts"] = dict(self.prompts)
        out["matryoshka_dims"] = list(self.matryoshka_dims) if self.matryoshka_dims is not None else None
        out["provenance"] = {k: self.provenance[k].to_dict() for k in self.field_names()}
        return out

    def to_json(self) -> str:
        """Indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def to_yaml(self) -> str:
        """Block-style YAML."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, width=100)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "recipe") -> "Recipe":
        """Build from a dict (as written by :meth:`to_dict`); unknown or missing fields are errors."""
        if not isinstance(data, dict):
            raise StRecipeError(f"{where}: a recipe must be a mapping of fields, not {type(data).__name__}")
        known = set(cls.field_names()) | {"provenance"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StRecipeError(f"{where}: unknown recipe field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        missing = [k for k in ("model", "method", "pairs") if k not in data]
        if missing:
            raise StRecipeError(f"{where}: missing required field(s) {', '.join(missing)}")
        prov = data.get("provenance") or {}
        if not isinstance(prov, dict) or not all(isinstance(v, dict) for v in prov.values()):
            raise StRecipeError(f"{where}: provenance must map field names to {{source, note}}")
        try:
            values = {k: v for k, v in data.items() if k != "provenance"}
            if values.get("method_args") is None:
                values["method_args"] = {}
            if "prompts" in values and values["prompts"] is None:
                values["prompts"] = {}
            return cls(**values, provenance={k: Provenance(**v) for k, v in prov.items()})
        except TypeError as exc:
            raise StRecipeError(f"{where}: {exc}") from None
        except StRecipeError as exc:
            raise StRecipeError(f"{where}: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Recipe":
        """Read a recipe from a YAML or JSON file."""
        data = read_structured(Path(path))
        return cls.from_dict(data, where=str(path))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write YAML (``.yaml``/``.yml``) or JSON, atomically."""
        from st_recipe._io import atomic_write_text

        target = Path(path)
        # A unique temporary sibling (a fixed name would let two saves of one path write into each other).
        return atomic_write_text(target, self.to_json() if target.suffix == ".json" else self.to_yaml())


ATTENTIONS = ("causal", "bidirectional")
# Prompt names and the training column each one is applied to (anchor <- query, positive <- document).
PROMPT_COLUMNS = {"query": "anchor", "document": "positive"}


def check_prompts(prompts: Any) -> dict[str, str]:
    """``{name: prompt}`` with names from :data:`PROMPT_COLUMNS` and non-empty prompt strings; one-line errors."""
    _check(isinstance(prompts, dict), f"prompts must map a name (query, document) to a prompt string, not {prompts!r}")
    for name, text in prompts.items():
        _check(name in PROMPT_COLUMNS, f"unknown prompt name {name!r}: use query (applied to anchors) or document "
                                       "(applied to positives)")
        _check(isinstance(text, str) and text != "", f"prompt {name!r} must be a non-empty string, not {text!r}")
    return prompts


def check_matryoshka_dims(dims: Any, hidden_size: int | None = None) -> list[int]:
    """Matryoshka dimensions as a list of distinct positive integers (each <= ``hidden_size`` when given)."""
    if isinstance(dims, str):
        try:
            dims = [int(d) for d in dims.replace(" ", "").split(",") if d]
        except ValueError:
            raise StRecipeError(f"matryoshka dims must be comma-separated integers such as 768,512,256, not {dims!r}") from None
    _check(isinstance(dims, (list, tuple)) and len(dims) > 0 and all(_is_int(d) for d in dims),
           f"matryoshka dims must be a non-empty list of integers, not {dims!r}")
    _check(all(d >= 1 for d in dims), f"matryoshka dims must be positive, not {list(dims)}")
    _check(len(set(dims)) == len(dims), f"matryoshka dims must be distinct, not {list(dims)}")
    if hidden_size is not None:
        too_big = [d for d in dims if d > hidden_size]
        _check(not too_big, f"matryoshka dims {too_big} exceed the model's embedding dimension {hidden_size}")
    return list(dims)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise StRecipeError(message)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def read_structured(path: Path) -> Any:
    """The parsed content of a YAML or JSON file (one-line errors for missing or malformed files)."""
    import yaml

    if not path.is_file():
        raise StRecipeError(f"recipe file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise StRecipeError(f"recipe file {str(path)!r} is not UTF-8 text") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, RecursionError, yaml.YAMLError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise StRecipeError(f"recipe file {str(path)!r} is malformed{where}: {str(exc).splitlines()[0]}") from None


# --- the registry in recipes/ ------------------------------------------------------------------------


def registry_dir() -> Path:
    """The folder holding the built-in recipe YAML files (``recipes/`` in a checkout, package data when installed)."""
    here = Path(__file__).resolve().parents[2] / "recipes"
    if (here / "defaults.yaml").is_file():
        return here
    return Path(str(resources.files("st_recipe") / "_recipes"))


def registry_files() -> list[Path]:
    """Recipe collection files in the registry (every YAML but defaults.yaml)."""
    return sorted(p for p in registry_dir().glob("*.yaml") if p.name != "defaults.yaml")


def load_collection(path: Path) -> dict[str, Recipe]:
    """Named recipes from one collection file (``recipes: {name: recipe}``)."""
    return collection_from_data(read_structured(path), path)


def collection_from_data(data: Any, path: Path) -> dict[str, Recipe]:
    """Named recipes from the parsed content of collection file ``path``."""
    if not isinstance(data, dict) or not isinstance(data.get("recipes"), dict):
        raise StRecipeError(f"{path}: a recipe collection needs a 'recipes' mapping of name -> recipe")
    return {name: Recipe.from_dict(r, where=f"{path.name}:{name}") for name, r in data["recipes"].items()}


def list_recipes() -> dict[str, tuple[Path, Recipe]]:
    """Every named recipe in the registry, with the file it lives in."""
    out: dict[str, tuple[Path, Recipe]] = {}
    for path in registry_files():
        for name, recipe in load_collection(path).items():
            out[name] = (path, recipe)
    return out


def get_recipe(name: str) -> Recipe:
    """A named registry recipe, or a recipe file path."""
    if os.path.sep in name or name.endswith((".yaml", ".yml", ".json")):
        return Recipe.load(name)
    recipes = list_recipes()
    if name not in recipes:
        from st_recipe.models.catalog import suggest

        raise StRecipeError(f"unknown recipe {name!r}{suggest(name, sorted(recipes))}")
    return recipes[name][1]
