"""The paper's grid in one command (``sweep --grid paper``) and what a sweep will cost (``sweep --dry-run``).

The paper's grid is its six budgets (``defaults.yaml``, the same as ``recipes/paper-grid.yaml``) × the Pythia
suite it trained (14M to 2.8B) × its four methods (full, block freezing, bias-only, LoRA), each method at
its default axis value. Cells whose budget cannot pay for one batch of the paper's 1,024 pairs are left
out and counted. The dry run prints each cell's planned FLOPs, its estimated peak memory per device
(:func:`st_recipe.costing.memory.estimate_memory`) and GPU-hours, and the resources each job asks for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from st_recipe.errors import StRecipeError

GRIDS = ("paper",)
PAPER_MODELS = ("pythia-14m", "pythia-31m", "pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b", "pythia-1.4b",
                "pythia-2.8b")
PAPER_METHODS = ("full", "freeze", "bias", "lora")

# Dense peak TFLOP/s of one H100 SXM by recipe precision (NVIDIA's datasheet; fp32 is without TF32, torch's
# default for matmuls), and the share of it a training step reaches (heuristic: no GPU throughput has been
# measured here; bench/gpu_throughput.py measures yours and --gpu-tflops / --mfu take the numbers).
PEAK_TFLOPS = {"fp32": 67.0, "bf16": 989.0, "fp16": 989.0}
DEFAULT_MFU = 0.3
GPU_MEMORY_GB = 80.0


@dataclass(frozen=True)
class Throughput:
    """The throughput model behind the GPU-hour estimate."""

    tflops: float | None = None  # None: the H100 peak for the recipe's precision
    mfu: float = DEFAULT_MFU
    gpu_memory_gb: float = GPU_MEMORY_GB

    def hours(self, flops: float, precision: str) -> float:
        """GPU-hours to run ``flops`` training FLOPs at this throughput."""
        peak = self.tflops or PEAK_TFLOPS.get(precision, PEAK_TFLOPS["fp32"])
        return flops / (peak * 1e12 * self.mfu) / 3600.0

    def describe(self) -> str:
        """One line naming the assumption."""
        peak = f"{self.tflops:g} TFLOP/s" if self.tflops else "an H100's peak for the recipe's precision"
        return f"GPU-hours at {peak} x MFU {self.mfu:g} (heuristic; set --gpu-tflops and --mfu from your own measurements)"


def paper_sweep(out: str | os.PathLike[str], *, data: str = "builtin", batch_size: int | None = None,
                max_seq_length: int | None = None, learning_rate: float | None = None,
                ) -> tuple[list[tuple[Any, Any]], dict[str, Any], list[str]]:
    """(cells with their recipes, the grid spec, the cells left out) for the paper's grid; checks the sweep dir."""
    from st_recipe.planning.builder import build_recipe
    from st_recipe.planning.defaults import load_defaults
    from st_recipe.sweeps.grid import _grid_spec, check_sweep_dir, grid_cells

    cells = grid_cells([float(b) for b in load_defaults().budgets], list(PAPER_MODELS), list(PAPER_METHODS))
    planned, skipped = [], []
    for cell in cells:
        try:
            recipe = build_recipe(budget=cell.budget, model=cell.model, method=cell.method, method_args=dict(cell.args),
                                  batch_size=batch_size, max_seq_length=max_seq_length, learning_rate=learning_rate)
        except StRecipeError as exc:
            if "the minimum is" not in str(exc):
                raise
            skipped.append(cell.name)  # the budget buys less than one batch on this model
            continue
        planned.append((cell, recipe))
    spec = _grid_spec([c for c, _ in planned], data, batch_size,
                      {"grid": "paper", "max_seq_length": max_seq_length, "learning_rate": learning_rate})
    check_sweep_dir(out, spec)
    return planned, spec, skipped


def plan_rows(planned: list[tuple[Any, Any]], throughput: Throughput, devices: int = 1) -> list[dict[str, Any]]:
    """One row per cell: planned pairs and FLOPs, peak memory per device, estimated GPU-hours."""
    from st_recipe.costing.memory import estimate_memory
    from st_recipe.costing.pricing import recipe_cost
    from st_recipe.methods import get_method

    rows = []
    for cell, recipe in planned:
        cost = recipe_cost(recipe)
        flops = float(recipe.budget or (cost.planned_flops if cost else 0.0))
        memory = None
        if cost is not None:
            try:
                memory = estimate_memory(cost.shape, get_method(recipe.method, **recipe.method_args),
                                         batch_size=recipe.batch_size, max_seq_length=recipe.max_seq_length,
                                         precision=recipe.precision, mini_batch_size=recipe.mini_batch_size,
                                         devices=max(1, devices)).total
            except StRecipeError:
                memory = None
        rows.append({"cell": cell.name, "model": recipe.model, "method": cell.config, "pairs": recipe.pairs,
                     "flops": flops, "memory_bytes": memory, "gpu_hours": throughput.hours(flops, recipe.precision),
                     "fits": memory is None or memory <= throughput.gpu_memory_gb * 2**30})
    return rows
