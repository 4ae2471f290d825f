"""Training with sharded weights (FSDP, DeepSpeed ZeRO): what changes for the budget trainer's run.

The launcher (``accelerate launch --config_file recipes/launch/<kind>.yaml``) asks for sharding through accelerate's
environment; after training every process takes part in gathering the full weights, and rank 0 loads them into a
fresh, unsharded encoder that merges, scores and saves like a one-process run.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.planning.recipes import Recipe
from st_recipe.training.trainer import is_main

logger = logging.getLogger("st_recipe")


def sharding_requested() -> str | None:
    """``FSDP`` or ``DEEPSPEED`` when the launcher asked for it (accelerate's environment), else None.

    Sharded weights are gathered at every forward, so every process must run the same number of forwards:
    padding-free sub-batches (a count per process's lengths) are off then.
    """
    for kind in ("FSDP", "DEEPSPEED"):
        if os.environ.get(f"ACCELERATE_USE_{kind}", "").lower() in ("1", "true"):
            return kind
    return None


def warn_if_unsharded(trainer: Any) -> None:
    """Say so when the launcher asked for FSDP / DeepSpeed but accelerate trains plain DDP (it does on CPUs)."""
    asked = sharding_requested()
    if asked and not is_sharded(trainer) and is_main():
        logger.warning("the launch config asks for %s, but accelerate applies it only on GPUs (or other accelerators): "
                       "this run is plain data parallel, every process holding the whole model", asked)


def is_sharded(trainer: Any) -> bool:
    """True when the trainer's weights are sharded over processes (FSDP, DeepSpeed)."""
    return bool(getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False))


_WRAPPER_PARTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def unsharded(trainer: Any, recipe: Recipe) -> tuple[Any, Any]:
    """The trained weights gathered into a fresh, unsharded encoder on rank 0 ((None, None) elsewhere).

    Every process must call this: gathering is a collective (FSDP's full state dict, ZeRO-3's consolidated
    16-bit weights through ``accelerator.get_state_dict``). The sharded model and its optimizer state are then
    released, and rank 0 moves the fresh encoder to its device for held-out scoring.
    """
    from st_recipe.encoder import build_encoder
    from st_recipe.methods import get_method

    if getattr(trainer, "is_fsdp_enabled", False):
        # torch's full state dict (FSDP1 and FSDP2): on accelerators, tensors copied to rank 0's CPU (empty
        # elsewhere). With CPU weights that offload is no copy, and FSDP1 frees the gathered storage the returned
        # tensors alias (SIGSEGV); there every process gets its own full copy instead, which is in RAM anyway.
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        on_cpu = next(trainer.model_wrapped.parameters()).device.type == "cpu"
        full = get_model_state_dict(trainer.model_wrapped,
                                    options=StateDictOptions(full_state_dict=True, cpu_offload=not on_cpu))
    else:
        full = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    device = trainer.args.device
    release(trainer)
    if not is_main():
        return None, None
    fresh = build_encoder(recipe.model, pooling=recipe.pooling, max_seq_length=recipe.max_seq_length, seed=recipe.seed,
                          attention=recipe.attention, prompts=recipe.prompts, include_prompt=recipe.include_prompt)
    method = get_method(recipe.method, **recipe.method_args)
    method.apply(fresh)
    cleaned = {}
    for key, tensor in full.items():
        for part in _WRAPPER_PARTS:
            key = key.replace(part, "")
        cleaned[key.removeprefix("module.")] = tensor
    expected = fresh.state_dict()
    if set(cleaned) != set(expected):
        missing, extra = sorted(set(expected) - set(cleaned))[:3], sorted(set(cleaned) - set(expected))[:3]
        raise StRecipeError(f"internal error: the gathered weights do not match the encoder (missing {missing}, "
                            f"unexpected {extra})")
    fresh.load_state_dict({k: v.to(expected[k].dtype) for k, v in cleaned.items()})
    del full, cleaned
    return fresh.to(device), method


def release(trainer: Any) -> None:
    """Drop the trainer's references to the sharded model, its optimizer and scheduler, and free their memory."""
    import gc

    import torch

    trainer.accelerator.free_memory()
    for name in ("model", "model_wrapped", "optimizer", "lr_scheduler", "deepspeed", "loss"):
        if hasattr(trainer, name):
            setattr(trainer, name, None)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
