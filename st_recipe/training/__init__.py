"""Training under a FLOP budget: the budget trainer, its state, held-out scores and the orchestrating ``train``."""

from st_recipe.training.orchestrate import RunResult, checkpoint_dir, train

__all__ = ["RunResult", "checkpoint_dir", "train"]
