"""``TrainOptions``: every option of one :func:`~st_recipe.training.train` run, in one frozen object.

As sentence-transformers passes one ``SentenceTransformerTrainingArguments`` to its trainer, ``train`` takes
one ``TrainOptions`` (or its field names as keywords). The recipe says what is trained; the options say where
the run goes and how it runs. Each option is checked on its own when the object is made, in one line.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.models.catalog import suggest
from st_recipe.run import RunDir
from st_recipe.training.dev_eval import DevEval
from st_recipe.training.tracking import Tracking

_FLAGS = ("resume", "overwrite", "gradient_checkpointing", "keep_checkpoints", "quiet", "padding_free",
          "mine_negatives", "mining_in_budget")
_TEXTS = ("anchor_column", "positive_column", "repo_id")


@dataclass(frozen=True)
class TrainOptions:
    """How one run runs: its folder, resume/overwrite, checkpoints, data columns, trackers and negative mining.

    ``padding_free`` (default) encodes each side of a training batch without padding: its texts packed into a
    few rows (per-text positions, attention that never crosses texts), or length-sorted sub-batches where
    packing does not reproduce the padded embeddings (same loss and gradients as the padded batch, fewer FLOPs
    run; see :mod:`st_recipe.training.packing`); ``False`` keeps the padded batch. With ``recipe.hard_negatives``
    k, each pair trains with its first k hard negatives from the data, or, with ``mine_negatives``, k negatives
    mined with the base model before training (their encoding FLOPs are reported in the record's
    ``data.hard_negatives.mining``, apart from the training budget unless ``mining_in_budget``: then they are
    charged to the budget and training gets what is left, ``flops.mining_charged`` in the record).
    """

    # The run dir to write (checkpoints go to <out>.checkpoints/); None: runs/<model>-<method>-<budget>, as the CLI.
    out: str | os.PathLike[str] | None = None
    resume: bool = False  # continue from the checkpoints beside ``out``
    overwrite: bool = False  # replace an earlier run dir (never a folder that is not one)
    gradient_checkpointing: bool = False
    save_steps: int | None = None  # checkpoint every N steps (None: a tenth of the run)
    keep_checkpoints: bool = False  # keep <out>.checkpoints/ after the run finishes
    quiet: bool = False  # no progress bar
    anchor_column: str | None = None
    positive_column: str | None = None
    repo_id: str | None = None  # the intended Hub repo, recorded for eval and publish
    padding_free: bool = True
    tracking: Tracking | None = None  # report_to: the trainer's own integrations
    dev_eval: DevEval | None = None  # a dev task scored during training
    mine_negatives: bool = False
    mining_in_budget: bool = False

    def __post_init__(self) -> None:
        if self.out is not None and not isinstance(self.out, (str, os.PathLike)):
            raise StRecipeError(f"out must be a folder path, not {type(self.out).__name__}")
        if self.out is not None:
            RunDir.at(self.out)  # an empty name is refused here, in RunDir's words
        for name in _FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise StRecipeError(f"{name} must be True or False, not {getattr(self, name)!r}")
        steps = self.save_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise StRecipeError(f"save_steps must be an integer >= 1, not {steps!r}")
        for name in _TEXTS:
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise StRecipeError(f"{name} must be a string, not {getattr(self, name)!r}")
        if self.tracking is not None and not isinstance(self.tracking, Tracking):
            raise StRecipeError(f"tracking must be a st_recipe.training.tracking.Tracking, not "
                                f"{type(self.tracking).__name__}")
        if self.dev_eval is not None and not isinstance(self.dev_eval, DevEval):
            raise StRecipeError(f"dev_eval must be a st_recipe.training.dev_eval.DevEval, not "
                                f"{type(self.dev_eval).__name__}")

    @staticmethod
    def field_names() -> list[str]:
        """The options, in order."""
        return [f.name for f in dataclasses.fields(TrainOptions)]

    @classmethod
    def resolve(cls, options: TrainOptions | None = None, overrides: dict[str, Any] | None = None) -> TrainOptions:
        """``options`` (default: the defaults) with ``overrides`` (option names) applied; an unknown name is one line."""
        changes = dict(overrides or {})
        if isinstance(options, (str, os.PathLike)):
            raise StRecipeError(f"options must be a TrainOptions, not a path: pass the output folder as out={str(options)!r}")
        if options is not None and not isinstance(options, TrainOptions):
            raise StRecipeError(f"options must be a TrainOptions, not {type(options).__name__}")
        names = cls.field_names()
        for key in changes:
            if key not in names:
                raise StRecipeError(f"train() got an unknown option {key!r}{suggest(key, names)}")
        base = options if options is not None else cls()
        return dataclasses.replace(base, **changes) if changes else base
