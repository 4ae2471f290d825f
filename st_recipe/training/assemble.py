"""What :func:`~st_recipe.training.orchestrate.train` builds before its first step, one named step each: the
encoder with its method applied (hard negatives mined on the way), the schedule the budget pays for, and the
trainer's loss, arguments and padding-free strategy."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st_recipe.costing.flops import CostProfile, FlopMeter, format_flops
from st_recipe.errors import StRecipeError
from st_recipe.planning.recipes import Recipe
from st_recipe.training.extras import RunExtras
from st_recipe.training.inputs import TrainData, column_prompts, pair_cost
from st_recipe.training.trainer import is_main

logger = logging.getLogger("st_recipe")


@dataclass
class Built:
    """The encoder ready to train: the method applied, its cost profile and meter, and what was known before."""

    model: Any
    source_info: dict[str, Any]
    before: Any  # held-out scores of the base model (rank 0, when data is held out)
    mining: Any  # the mining report when negatives were mined with the base model
    method: Any
    report: Any  # the method's parameter counts
    profile: CostProfile
    meter: FlopMeter


def build_model(recipe: Recipe, data: TrainData, *, mine_negatives: bool, quiet: bool) -> Built:
    """Build the encoder, score it on the held-out pairs, mine negatives with it if asked, apply the method.

    Mining replaces ``data.train_pairs`` with the mined pairs.
    """
    import torch

    from st_recipe.costing.flops import profile_model
    from st_recipe.encoder import build_encoder, encoder_source
    from st_recipe.methods import get_method
    from st_recipe.training.heldout import heldout_scores

    torch.manual_seed(recipe.seed)
    model = build_encoder(recipe.model, pooling=recipe.pooling, max_seq_length=recipe.max_seq_length, seed=recipe.seed,
                          attention=recipe.attention, prompts=recipe.prompts, include_prompt=recipe.include_prompt)
    if recipe.matryoshka_dims:
        from st_recipe.planning.recipes import check_matryoshka_dims

        check_matryoshka_dims(recipe.matryoshka_dims, model.get_embedding_dimension())
    source_info = encoder_source(model)
    before = heldout_scores(model, data.held, recipe.temperature) if data.held is not None and is_main() else None
    mining = None
    if recipe.hard_negatives and mine_negatives:
        mining = _mine(model, recipe, data, quiet=quiet)
    method = get_method(recipe.method, **recipe.method_args)
    report = method.apply(model)
    profile = profile_model(model)
    return Built(model, source_info, before, mining, method, report, profile, FlopMeter(profile))


def _mine(model: Any, recipe: Recipe, data: TrainData, *, quiet: bool) -> Any:
    """Mine ``recipe.hard_negatives`` negatives per training pair with the base model; returns the mining report."""
    from st_recipe.costing.flops import profile_model
    from st_recipe.data import check_enough
    from st_recipe.data.mining import mine_negatives as mine

    # With the base model, before the method changes it; only training pairs are mined (nothing held out).
    mined, mining = mine(model, data.train_pairs, recipe.hard_negatives, profile=profile_model(model))
    if mining.shortfall():
        # Training on the few pairs that got negatives would silently drop most of the data.
        raise StRecipeError(mining.shortfall() + "; then train on the mined file with --hard-negatives K")
    data.train_pairs = mined.with_negatives(recipe.hard_negatives)
    check_enough(data.train_pairs, recipe.batch_size)
    if is_main() and not quiet:
        logger.warning("%s", mining.summary())
    return mining


def charge_mining(budget: float | None, mining: Any) -> tuple[float | None, float]:
    """(training budget, FLOPs charged): the mining pass's forward FLOPs come out of the budget when it is charged."""
    if mining is None:
        return budget, 0.0
    if budget is None:
        raise StRecipeError("mining inside the budget needs a FLOP budget (--budget)")
    if mining.forward_flops >= budget:
        raise StRecipeError(f"mining cost {format_flops(mining.forward_flops)} FLOP, the whole budget of "
                            f"{format_flops(budget)} or more; raise the budget or mine outside it (st-recipe mine)")
    return budget - mining.forward_flops, float(mining.forward_flops)


@dataclass(frozen=True)
class Schedule:
    """What the budget pays for: the training budget (mining's charge taken out), the cost of a pair and a batch,
    and the number of steps the LR schedule spans."""

    budget: float
    charged: float
    per_pair: float
    per_batch: float
    planned_steps: int


def size_schedule(recipe: Recipe, built: Built, train_pairs: Any, *, mining_in_budget: bool) -> Schedule:
    """The training budget and planned steps; refuses a budget too small for one step."""
    budget, charged = charge_mining(recipe.budget, built.mining if mining_in_budget else None)
    per_pair = pair_cost(built.model, train_pairs, built.meter, recipe.max_seq_length, recipe.seed,
                         recipe.hard_negatives)
    if budget is None:
        budget = per_pair * recipe.pairs
    per_batch = per_pair * recipe.batch_size
    if budget // per_batch < 1:
        raise StRecipeError(
            f"budget {format_flops(budget)} FLOP is too small for one step of {recipe.batch_size} pairs "
            f"(about {format_flops(per_batch)} FLOP on this data); raise the budget or lower the batch size")
    # The schedule spans every step the budget pays for, the final partial one included: with floor() the
    # last full and partial steps trained at LR 0 (5 % of a real run's FLOPs in bench/results/quality.md).
    planned_steps = max(1, math.ceil(budget / per_batch - 1e-9))
    return Schedule(budget, charged, per_pair, per_batch, planned_steps)


def make_loss(model: Any, recipe: Recipe, world: int) -> Any:
    """Symmetric InfoNCE at the recipe's temperature (GradCache with a mini-batch; Matryoshka with dims)."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    loss_kwargs = dict(scale=1.0 / recipe.temperature, directions=("query_to_doc", "doc_to_query"),
                       partition_mode="per_direction", gather_across_devices=world > 1)
    if recipe.mini_batch_size:
        loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=recipe.mini_batch_size, **loss_kwargs)
    else:
        loss = MultipleNegativesRankingLoss(model, **loss_kwargs)
    if recipe.matryoshka_dims:
        from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss

        # The same InfoNCE on each truncated embedding; the encoder runs once per batch, so the meter is unchanged.
        loss = MatryoshkaLoss(model, loss, matryoshka_dims=list(recipe.matryoshka_dims))
    return loss


def training_args(recipe: Recipe, checkpoints: Path, planned_steps: int, *, save_steps: int | None,
                  gradient_checkpointing: bool, extras: RunExtras, world: int) -> Any:
    """The trainer's arguments (of the class the extras ask for): batch per process, LR, checkpoints, precision."""
    import torch
    from sentence_transformers.base.sampler import BatchSamplers

    from st_recipe.training.environment import checkpointing_args

    return extras.args_class()(
        output_dir=str(checkpoints),
        # Generous slack past the plan: the exact budget check, not max_steps, ends the run (a cosine or linear
        # LR stays at 0 after the planned steps, so an optimistic estimate cannot push training past the schedule).
        max_steps=2 * planned_steps + 10,
        per_device_train_batch_size=recipe.batch_size // world,
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        warmup_steps=0,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="steps",
        save_steps=save_steps or max(1, planned_steps // 10),
        save_total_limit=None,  # the budget trainer keeps the last complete checkpoints itself
        logging_steps=1,
        **extras.args(recipe.to_dict()),
        seed=recipe.seed,
        data_seed=recipe.seed,
        bf16=recipe.precision == "bf16",
        fp16=recipe.precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        **checkpointing_args(gradient_checkpointing),
        disable_tqdm=True,
        prompts=column_prompts(recipe) or None,
        dataloader_drop_last=True,
        ddp_find_unused_parameters=False,
        save_only_model=False,
    )


def padding_free_for(model: Any, meter: FlopMeter, padding_free: bool) -> Any:
    """The padding-free strategy (packed rows or sub-batches), or None where it does not apply."""
    import torch

    from st_recipe.training.packing import default_overhead, padding_free_strategy
    from st_recipe.training.sharded import sharding_requested

    # Packed rows or sub-batches are exact only with right padding: left padding shifts positions.
    # Sharded weights are gathered at every forward, so every process must run the same number of forwards:
    # padding-free sub-batches (a count per process's lengths) are off under FSDP / DeepSpeed.
    if padding_free and not sharding_requested() and getattr(model[0].tokenizer, "padding_side", "right") == "right":
        return padding_free_strategy(meter.profile, default_overhead("cuda" if torch.cuda.is_available() else "cpu"))
    return None
