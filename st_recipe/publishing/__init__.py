"""Publish a finished run dir to the Hugging Face Hub: model card, MTEB model-index and metadata, one commit.

What goes up is an allowlist staged into a temporary folder: the sentence-transformers model files of the
run (merged weights, configs, tokenizer), a card rendered from ``model_cards/model_card.md.j2``, the
training-loss plot, the evaluation summary with an mteb ``ModelMeta`` beside it, and a copy of
``st_recipe.json`` with local paths removed. ``dry_run`` writes exactly the staged folder and uploads nothing.

The stage's parts, one module each:

- :mod:`~st_recipe.publishing.staging`: the allowlist, the run's files and eval summary, the staged folder,
  and which earlier dry-run folder may be replaced;
- :mod:`~st_recipe.publishing.privacy`: the token (never written anywhere) and the public copies of records;
- :mod:`~st_recipe.publishing.facts`: base model, data, model shape and the mteb ``ModelMeta``;
- :mod:`~st_recipe.publishing.card` and :mod:`~st_recipe.publishing.plots`: the model card and its figures;
- :mod:`~st_recipe.publishing.push`: repo ids, preflight, the push, and Hub errors as one line;
- :mod:`~st_recipe.publishing.pipeline`: :func:`publish`, which runs them in order.
"""

from __future__ import annotations

from st_recipe.publishing.card import TEMPLATE, render_card, template_path
from st_recipe.publishing.facts import model_meta
from st_recipe.publishing.pipeline import PublishResult, publish
from st_recipe.publishing.push import validate_repo_id
from st_recipe.publishing.staging import (
    CARD_FILE,
    FRONTIER_PLOT,
    GENERATED_PATTERNS,
    LOSS_PLOT,
    META_FILE,
    MODEL_PATTERNS,
    RESULTS_FILE,
    check_run_files,
    load_results,
    run_identity,
)

__all__ = [
    "CARD_FILE",
    "FRONTIER_PLOT",
    "GENERATED_PATTERNS",
    "LOSS_PLOT",
    "META_FILE",
    "MODEL_PATTERNS",
    "RESULTS_FILE",
    "TEMPLATE",
    "PublishResult",
    "check_run_files",
    "load_results",
    "model_meta",
    "publish",
    "render_card",
    "run_identity",
    "template_path",
    "validate_repo_id",
]
