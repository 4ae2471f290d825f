"""Facts about where a run happens (library versions, hardware) and the training arguments that depend on them."""

from __future__ import annotations

import dataclasses
import os
import platform
from typing import Any

from st_recipe.run import Hardware
from st_recipe.training.trainer import world_size

_VERSIONED = ("st-recipe", "torch", "transformers", "sentence-transformers", "peft", "accelerate", "datasets")


def versions() -> dict[str, str]:
    """Python's and the training stack's versions, for the run record."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in _VERSIONED:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def hardware() -> Hardware:
    """The platform, CPU count, process count and GPUs this run used."""
    import torch

    info = Hardware(platform=platform.platform(), cpu_count=os.cpu_count(), world_size=world_size())
    if torch.cuda.is_available():
        info.gpu = torch.cuda.get_device_name(0)
        info.gpus = torch.cuda.device_count()
    return info


def checkpointing_args(enabled: bool) -> dict[str, Any]:
    """Activation-checkpointing TrainingArguments under their current name (``gradient_*`` before transformers 5.x)."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    names = {f.name for f in dataclasses.fields(SentenceTransformerTrainingArguments)}
    prefix = "activation" if "activation_checkpointing" in names else "gradient"
    # Frozen layers under checkpointing need the non-reentrant variant (inputs without grad otherwise break it).
    return {f"{prefix}_checkpointing": enabled,
            f"{prefix}_checkpointing_kwargs": {"use_reentrant": False} if enabled else None}
