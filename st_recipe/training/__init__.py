"""Training under a FLOP budget: the budget trainer, its state, held-out scores and the orchestrating ``train``."""

from st_recipe.training.orchestrate import RunResult, check_out, checkpoint_dir, prepare_out, train

__all__ = ["RunResult", "check_out", "checkpoint_dir", "prepare_out", "train"]
