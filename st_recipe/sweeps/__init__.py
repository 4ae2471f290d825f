"""Grids of runs: the grid itself, its cost and the paper's grid, scheduler jobs (submitit), and results."""
