"""Multi-GPU / multi-node launch recipes: the shipped accelerate configs and the exact command for a run (torch-free).

``recipes/launch/`` (packaged as ``st_recipe._recipes/launch``) holds accelerate config files for plain DDP, FSDP
full shard (FSDP1 and FSDP2) and DeepSpeed ZeRO-2/3. ``st-recipe train --distributed KIND ...`` prints the
``accelerate launch`` command that runs the same training over them; it never starts processes itself.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from st_recipe.errors import StRecipeError

LAUNCH_CONFIGS = {
    "ddp": "ddp.yaml",
    "fsdp": "fsdp.yaml",
    "fsdp2": "fsdp2.yaml",
    "deepspeed": "deepspeed-zero3.yaml",
    "deepspeed-zero2": "deepspeed-zero2.yaml",
    "deepspeed-zero3": "deepspeed-zero3.yaml",
}

# The decoder block of each architecture st-recipe reads: FSDP's wrap unit (transformers' ``_no_split_modules``;
# a SentenceTransformer has none of its own, so accelerate cannot find it without being told).
BLOCK_CLASSES = {
    "gpt_neox": "GPTNeoXLayer",
    "llama": "LlamaDecoderLayer",
    "mistral": "MistralDecoderLayer",
    "qwen2": "Qwen2DecoderLayer",
    "qwen3": "Qwen3DecoderLayer",
    "gemma": "GemmaDecoderLayer",
    "gemma2": "Gemma2DecoderLayer",
    "gemma3_text": "Gemma3DecoderLayer",
    "phi3": "Phi3DecoderLayer",
    "gpt2": "GPT2Block",
    "opt": "OPTDecoderLayer",
}
SHIPPED_BLOCK = "GPTNeoXLayer"  # what fsdp.yaml / fsdp2.yaml name
CONFIG_PROCESSES = 8  # num_processes in the shipped configs (one machine of 8 GPUs)


def launch_dir() -> Path:
    """The folder of shipped accelerate configs."""
    from st_recipe.planning.recipes import registry_dir

    return registry_dir() / "launch"


def launch_config(kind: str) -> Path:
    """The shipped accelerate config for ``kind`` (ddp, fsdp, fsdp2, deepspeed, deepspeed-zero2, deepspeed-zero3)."""
    if kind not in LAUNCH_CONFIGS:
        raise StRecipeError(f"unknown --distributed {kind!r}; choose one of {', '.join(LAUNCH_CONFIGS)}")
    path = launch_dir() / LAUNCH_CONFIGS[kind]
    if not path.is_file():
        raise StRecipeError(f"the launch config {path} is missing from this installation")
    return path


def block_class(model_type: str | None) -> str | None:
    """The decoder block class of a ``model_type`` (None when unknown)."""
    return BLOCK_CLASSES.get(model_type or "")


def model_type_for(model: str) -> str | None:
    """The model's ``model_type`` from the catalogue or its config.json (None when it cannot be read)."""
    try:
        from st_recipe.models.shapes import resolve_shape

        shape = resolve_shape(model)
    except StRecipeError:
        return None
    return getattr(shape, "model_type", None) or ("gpt_neox" if getattr(shape, "family", "") == "pythia" else None)


def launch_command(kind: str, train_args: list[str], *, model: str | None = None, processes: int | None = None,
                   machines: int = 1, bf16: bool = False) -> str:
    """The ``accelerate launch`` command that runs ``st-recipe train <train_args>`` with the shipped ``kind`` config."""
    config = launch_config(kind)
    parts = ["accelerate", "launch", "--config_file", str(config)]
    if processes or machines > 1:
        # accelerate's num_processes counts every process on every machine.
        parts += ["--num_processes", str((processes or CONFIG_PROCESSES) * machines)]
    if machines > 1:
        parts += ["--num_machines", str(machines), "--machine_rank", "<MACHINE_RANK>",
                  "--main_process_ip", "<MAIN_MACHINE_IP>", "--main_process_port", "29500"]
    # The launcher's precision follows the recipe's (the configs default to bf16).
    parts += ["--mixed_precision", "bf16" if bf16 else "no"]
    if kind.startswith("fsdp") and model is not None:
        block = block_class(model_type_for(model))
        if block is None:
            raise StRecipeError(f"cannot tell the decoder block class of {model!r} for FSDP's wrap unit; edit "
                                f"fsdp_transformer_layer_cls_to_wrap in a copy of {config}")
        if block != SHIPPED_BLOCK:
            parts += ["--fsdp_transformer_layer_cls_to_wrap", block]
    parts += ["-m", "st_recipe.cli", "train", *train_args]
    return " ".join(p if p.startswith("<") else shlex.quote(p) for p in parts)


def strip_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = True
            continue
        if arg.startswith(name + "="):
            continue
        out.append(arg)
    return out

