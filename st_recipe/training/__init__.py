"""Training under a FLOP budget: the budget trainer, its state, held-out scores and the orchestrating ``train``."""

from st_recipe.training.options import TrainOptions
from st_recipe.training.orchestrate import RunResult, checkpoint_dir, train
from st_recipe.training.record import recorded_recipe

__all__ = ["RunResult", "TrainOptions", "checkpoint_dir", "recorded_recipe", "train"]
