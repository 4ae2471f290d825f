"""st-recipe: compute-optimal recipes for turning decoder-only LMs into sentence-transformers embedding models.

Heavy libraries (torch, transformers, sentence-transformers) are imported lazily on first use so that
``import st_recipe`` and the CLI's fast paths stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from st_recipe.errors import StRecipeError

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    # The pipeline: budget -> plan -> train -> evaluate -> publish, and sweep -> fit.
    "plan": "st_recipe.planning.planner",
    "train": "st_recipe.training",
    "TrainOptions": "st_recipe.training",
    "evaluate": "st_recipe.evaluation",
    "publish": "st_recipe.publishing",
    "sweep": "st_recipe.sweeps.grid",
    "fit": "st_recipe.sweeps.grid",
    "Recipe": "st_recipe.planning.recipes",
    "build_recipe": "st_recipe.planning.builder",
    "RunRecord": "st_recipe.run",
    "RunDir": "st_recipe.run",
    "FittedLaw": "st_recipe.planning.scaling",
    "compare_methods": "st_recipe.costing.pricing",
    "build_encoder": "st_recipe.encoder",
    "get_method": "st_recipe.methods",
    "list_methods": "st_recipe.methods",
    "register_method": "st_recipe.methods",
    "Method": "st_recipe.methods.base",
    "ParamReport": "st_recipe.models.architecture",
    "CATALOG": "st_recipe.models.catalog",
    "get_spec": "st_recipe.models.catalog",
    "parse_model_spec": "st_recipe.models.args",
    "classify_model": "st_recipe.models.args",
}

__all__ = ["StRecipeError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'st_recipe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
