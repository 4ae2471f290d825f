"""Training under a FLOP budget: the budget trainer and its state."""
