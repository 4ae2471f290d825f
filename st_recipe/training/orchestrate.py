"""``train``: Recipe -> budget trainer -> run dir.

The run dir is a standard sentence-transformers folder (merged weights, built-in modules only) plus
``st_recipe.json``. It is written to a temporary sibling and renamed when complete; checkpoints live in
``<out>.checkpoints/`` beside it so ``resume=True`` continues a killed run with the same result.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st_recipe._files import OutputLock, atomic_write_text, disk_full
from st_recipe.errors import StRecipeError
from st_recipe.flops import FlopMeter, format_flops
from st_recipe.recipes import Recipe
from st_recipe.run import RUN_RECORD, FlopsInfo, Heldout, LossCurve, MethodInfo, ModelInfo, RunDir, RunRecord
from st_recipe.training.inputs import column_prompts, data_info, negatives_for_training, pair_cost
from st_recipe.training.extras import RunExtras
from st_recipe.training.trainer import BudgetReached, BudgetState, is_main, world_size

logger = logging.getLogger("st_recipe")

IDENTITY_FILE = "run.json"  # in the checkpoint folder: what a resume must match


@dataclass
class RunResult:
    """What a finished run reports: its folder and (on the writing process) its record."""

    out: Path
    record: RunRecord | None = None

    @property
    def spent_fraction(self) -> float:
        """FLOPs spent / budget."""
        return float(self.record.flops.spent_fraction) if self.record else 0.0


def checkpoint_dir(out: str | os.PathLike[str]) -> Path:
    """Where a run's checkpoints live: beside the run dir."""
    return RunDir(out).checkpoints


def check_out(out: Path, *, overwrite: bool, resume: bool) -> None:
    """Refuse an output folder that must not be written or replaced (no side effects; the CLI calls it early)."""
    # First: while another run holds the folder, what it holds says nothing about what this run may do.
    OutputLock(out).check()
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise StRecipeError(f"output path {str(out)!r} is a file, not a folder")
        is_run = (out / RUN_RECORD).is_file()
        empty = not any(out.iterdir())
        if not overwrite and not empty:
            if resume and any(checkpoint_dir(out).glob("checkpoint-*")):
                # A killed --overwrite: the old run is still there and the new one's checkpoints beside it.
                raise StRecipeError(f"{str(out)!r} holds an earlier run and {str(checkpoint_dir(out))!r} an unfinished "
                                    "one: --resume --overwrite finishes the unfinished run and then replaces the "
                                    "earlier one; --overwrite alone deletes those checkpoints and starts again")
            raise StRecipeError(f"output folder {str(out)!r} already exists; pass --overwrite to replace it")
        if overwrite and not (is_run or empty):
            # --overwrite must never wipe a folder of the user's that is not an earlier run.
            raise StRecipeError(f"refusing to replace {str(out)!r}: it is neither an earlier st-recipe run dir "
                                f"(no {RUN_RECORD}) nor empty; choose another --out")
    ckpt = checkpoint_dir(out)
    # Only a complete checkpoint makes an unfinished run: a record alone (a run that failed or was killed
    # before its first checkpoint) has nothing to resume, and the run below replaces it.
    if _resumable(ckpt) and not resume and not overwrite:
        raise StRecipeError(f"{str(ckpt)!r} holds checkpoints of an unfinished run; pass --resume to continue "
                            "it or --overwrite to start again")


def prepare_out(out: Path, *, overwrite: bool, resume: bool) -> None:
    """:func:`check_out`, then make sure the folder can be written and drop stale checkpoints when overwriting."""
    check_out(out, overwrite=overwrite, resume=resume)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # Probe with a real folder: access() says yes for root on read-only or virtual file systems.
        Path(tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=out.parent)).rmdir()
    except OSError as exc:
        raise StRecipeError(f"cannot write the output folder {str(out)!r}: {exc.strerror or exc}") from None
    ckpt = checkpoint_dir(out)
    if ckpt.exists() and not resume:
        shutil.rmtree(ckpt, ignore_errors=True)


def _resumable(ckpt: Path) -> bool:
    from st_recipe.training.trainer import latest_checkpoint

    return latest_checkpoint(ckpt) is not None


def _drop_unresumable(ckpt: Path, kept: bool) -> None:
    """After a failed run: remove its checkpoint folder unless it holds a complete checkpoint (or is ``kept``).

    Left behind, its record alone would make the next plain run refuse, naming an unfinished run that
    cannot be resumed. ``kept``: the folder a --resume was pointed at, which is the user's and stays.
    """
    if not kept and ckpt.is_dir() and not _resumable(ckpt):
        shutil.rmtree(ckpt, ignore_errors=True)


def _check_same_run(root: Path, identity: dict[str, Any]) -> None:
    saved_path = root / IDENTITY_FILE
    if not saved_path.is_file():
        return
    try:
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        raise StRecipeError(f"{str(saved_path)!r} is damaged, so these checkpoints cannot be matched to this recipe; "
                            "--overwrite starts again and deletes them") from None
    if saved != identity:
        raise StRecipeError(f"the checkpoints in {str(root)!r} come from a different recipe or data; "
                            "use --overwrite to start again")


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


def _holding_out_lock(fn: Any) -> Any:
    """Run ``train`` holding ``<out>.lock`` (its run dir and checkpoints are this process's until it returns)."""
    import functools

    @functools.wraps(fn)
    def locked(recipe: Recipe, data: Any = "builtin", out: str | os.PathLike[str] = "runs/run", **kwargs: Any) -> Any:
        if not is_main() or not str(out).strip():
            return fn(recipe, data, out, **kwargs)
        path = Path(os.path.abspath(os.path.expanduser(out)))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # prepare_out would make it anyway
        except OSError as exc:
            raise StRecipeError(f"cannot write the output folder {str(path)!r}: {exc.strerror or exc}") from None
        with OutputLock(path):
            ckpt = RunDir(path).checkpoints
            kept = bool(kwargs.get("resume")) and ckpt.exists()
            try:
                return fn(recipe, data, out, **kwargs)
            except BaseException:
                _drop_unresumable(ckpt, kept)
                raise

    return locked


@_holding_out_lock
def train(
    recipe: Recipe,
    data: Any = "builtin",
    out: str | os.PathLike[str] = "runs/run",
    *,
    resume: bool = False,
    overwrite: bool = False,
    gradient_checkpointing: bool = False,
    save_steps: int | None = None,
    keep_checkpoints: bool = False,
    quiet: bool = False,
    anchor_column: str | None = None,
    positive_column: str | None = None,
    repo_id: str | None = None,
    padding_free: bool = True,
    tracking: Any = None, dev_eval: Any = None,  # training.tracking.Tracking (report_to), training.dev_eval.DevEval
    mine_negatives: bool = False,
    mining_in_budget: bool = False,
) -> RunResult:
    """Train ``recipe`` on ``data`` until its FLOP budget is spent; write the run dir ``out``.

    ``padding_free`` (default) encodes each side of a training batch without padding: its texts packed
    into a few rows (per-text positions, attention that never crosses texts), or length-sorted sub-batches
    where packing does not reproduce the padded embeddings (same loss and gradients as the padded batch,
    fewer FLOPs run; see :mod:`st_recipe.training.packing`); ``False`` keeps the padded batch.
    With ``recipe.hard_negatives`` k, each pair trains with its first k hard negatives from the data, or, with
    ``mine_negatives``, k negatives mined with the base model before training (its encoding FLOPs are reported
    in the record's ``data.hard_negatives.mining``, apart from the training budget unless ``mining_in_budget``:
    then they are charged to the budget and training gets what is left, ``flops.mining_charged`` in the record).
    """
    import torch

    from st_recipe.data import BUILTIN, check_enough, load_pairs
    from st_recipe.encoder import build_encoder, encoder_source, save_encoder
    from st_recipe.flops import profile_model
    from st_recipe.methods import get_method
    from st_recipe.training.environment import hardware, versions
    from st_recipe.training.heldout import heldout_scores, split_heldout

    if not str(out).strip():
        raise StRecipeError("the output folder (--out) must not be empty")
    if save_steps is not None and (isinstance(save_steps, bool) or not isinstance(save_steps, int) or save_steps < 1):
        raise StRecipeError(f"--save-steps must be an integer >= 1, not {save_steps!r}")
    # An absolute path gives '.' or 'runs/' a real name for the temporary siblings and checkpoints.
    run_dir = RunDir(os.path.abspath(os.path.expanduser(out)))
    if is_main():
        prepare_out(run_dir.path, overwrite=overwrite, resume=resume)
    source = str(data or BUILTIN) if isinstance(data, (str, type(None))) else getattr(data, "source", "pairs")
    pairs_all = data if hasattr(data, "anchors") else load_pairs(
        data or BUILTIN, anchor_column=anchor_column, positive_column=positive_column, seed=recipe.seed)
    train_pairs, held = split_heldout(pairs_all, source)
    train_pairs = negatives_for_training(recipe, pairs_all, train_pairs, mine_negatives)
    check_enough(train_pairs, recipe.batch_size)
    world = world_size()
    if recipe.batch_size % world:
        raise StRecipeError(f"batch size {recipe.batch_size} is not divisible by the {world} processes")

    started = time.time()
    torch.manual_seed(recipe.seed)
    model = build_encoder(recipe.model, pooling=recipe.pooling, max_seq_length=recipe.max_seq_length, seed=recipe.seed,
                          attention=recipe.attention, prompts=recipe.prompts, include_prompt=recipe.include_prompt)
    if recipe.matryoshka_dims:
        from st_recipe.recipes import check_matryoshka_dims

        check_matryoshka_dims(recipe.matryoshka_dims, model.get_embedding_dimension())
    source_info = encoder_source(model)
    before = heldout_scores(model, held, recipe.temperature) if held is not None and is_main() else None
    mining = None
    if recipe.hard_negatives and mine_negatives:
        from st_recipe.data.mining import mine_negatives as mine

        # With the base model, before the method changes it; only training pairs are mined (nothing held out).
        mined, mining = mine(model, train_pairs, recipe.hard_negatives, profile=profile_model(model))
        if mining.shortfall():
            # Training on the few pairs that got negatives would silently drop most of the data.
            raise StRecipeError(mining.shortfall() + "; then train on the mined file with --hard-negatives K")
        train_pairs = mined.with_negatives(recipe.hard_negatives)
        check_enough(train_pairs, recipe.batch_size)
        if is_main() and not quiet:
            logger.warning("%s", mining.summary())
    method = get_method(recipe.method, **recipe.method_args)
    report = method.apply(model)
    profile = profile_model(model)
    meter = FlopMeter(profile)

    budget, charged = charge_mining(recipe.budget, mining if mining_in_budget else None)
    per_pair = pair_cost(model, train_pairs, meter, recipe.max_seq_length, recipe.seed, recipe.hard_negatives)
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

    identity = {"recipe": recipe.to_dict(), "data": source}
    resume_from = _resume_point(run_dir.checkpoints, identity) if resume else None
    state = BudgetState(budget=budget)
    extras = RunExtras.build(tracking, dev_eval, state, profile, run_dir.path)
    trainer, callback = _budget_trainer(model, recipe, train_pairs, state, meter, run_dir.checkpoints, planned_steps,
                                        identity=identity, save_steps=save_steps, resume_from=resume_from, quiet=quiet,
                                        gradient_checkpointing=gradient_checkpointing, padding_free=padding_free, extras=extras)
    from st_recipe.training.sharded import is_sharded, unsharded, warn_if_unsharded

    warn_if_unsharded(trainer)
    try:
        extras.before(trainer, resumed=resume_from is not None)
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except BudgetReached:
        state.stopped_by = "budget"
    finally:
        callback.close(trainer.state.global_step)
    extras.finish(trainer)
    wall = time.time() - started
    if state.flops > budget * (1 + 1e-9):
        raise StRecipeError(f"internal error: spent {state.flops:.4g} FLOP over the budget {budget:.4g}")

    if is_sharded(trainer):
        # FSDP / DeepSpeed ZeRO hold each process's slice of the weights: gather them (every process takes
        # part) into a fresh, unsharded encoder on rank 0, which then merges, scores and saves alone.
        model, method = unsharded(trainer, recipe)
    if model is not None:
        method.merge(model)
    record = None
    if is_main():
        n, nt = report.n_params, report.n_trainable
        not_counted = ("GradCache's extra embedding pass and gradient-checkpointing recompute"
                       if (recipe.mini_batch_size or gradient_checkpointing) else None)
        if recipe.matryoshka_dims:
            extra = (f"the Matryoshka loss's {len(recipe.matryoshka_dims)} extra in-batch similarity matrices on "
                     "truncated embeddings (batch² × dim each; negligible next to the encoder)")
            not_counted = f"{not_counted}; {extra}" if not_counted else extra
        record = RunRecord(
            recipe=recipe.to_dict(),
            repo_id=repo_id,
            model=ModelInfo(**source_info),
            random_init=bool(source_info.get("random_init")),
            method=MethodInfo(name=method.name, args=method.args(), params=report.to_dict(),
                              cost_formula=method.cost_formula),
            data=data_info(source, pairs_all, train_pairs, held, planned_steps * recipe.batch_size / len(train_pairs),
                            recipe.hard_negatives, mining),
            flops=FlopsInfo(budget=budget + charged, planned=min(planned_steps * per_batch, budget), spent=state.flops,
                            spent_fraction=(state.flops + charged) / (budget + charged), mining_charged=charged, executed_with_padding=state.padded,
                            paper_formula=method.flops_per_token(n, nt) * state.tokens, per_pair_estimate=per_pair,
                            profile=profile.to_dict(), stopped_by=state.stopped_by, not_counted=not_counted),
            steps=trainer.state.global_step,
            planned_steps=planned_steps,
            pairs_seen=state.pairs,
            tokens_seen=state.tokens,
            loss=LossCurve(final=state.losses[-1] if state.losses else None, per_step=state.losses, lr=state.lrs),
            heldout=Heldout(before=before, after=heldout_scores(model, held, recipe.temperature) if held is not None else None),
            wall_time_s=round(wall, 2),
            hardware=hardware(),
            versions=versions(),
            seed=recipe.seed,
            gradient_checkpointing=gradient_checkpointing,
            resumed=resume_from is not None, dev=extras.record(),
        )
        _save_run(run_dir, lambda tmp: save_encoder(model, tmp), record)
        if not keep_checkpoints:
            shutil.rmtree(run_dir.checkpoints, ignore_errors=True)
    if world > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return RunResult(out=run_dir.path, record=record)


def _save_run(run_dir: RunDir, save_model: Any, record: RunRecord) -> None:
    """Write the run dir (through a temporary sibling); a full disk is one line naming the run dir."""
    try:
        run_dir.write(save_model, record)
    except (OSError, RuntimeError) as exc:  # safetensors and torch raise their own types for a full disk
        if disk_full(exc, run_dir.path.parent):
            raise StRecipeError(f"no space left on device ({run_dir.path})") from None
        raise


def _resume_point(root: Path, identity: dict[str, Any]) -> Path | None:
    """The checkpoint to continue from; says so when there is none."""
    from st_recipe.training.trainer import latest_checkpoint

    found = latest_checkpoint(root)
    if found is not None:
        _check_same_run(root, identity)
    elif is_main():
        logger.warning("nothing to resume in %s: starting a fresh run", root)
    return found


def _budget_trainer(model: Any, recipe: Recipe, train_pairs: Any, state: BudgetState, meter: FlopMeter,
                    checkpoints: Path, planned_steps: int, *, identity: dict[str, Any], save_steps: int | None,
                    resume_from: Path | None, quiet: bool, gradient_checkpointing: bool,
                    padding_free: bool = True, extras: RunExtras | None = None) -> tuple[Any, Any]:
    """The configured budget trainer and its progress callback."""
    import torch
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    from st_recipe.training.environment import checkpointing_args
    from st_recipe.training.packing import default_overhead
    from st_recipe.training.packing import padding_free_strategy
    from st_recipe.training.trainer import budget_callback, make_trainer

    world = world_size()
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
    if is_main():
        try:
            checkpoints.mkdir(parents=True, exist_ok=True)
            for stale in checkpoints.glob(".staging-*"):  # a checkpoint a crash left half-written
                shutil.rmtree(stale, ignore_errors=True)
            # Atomic: a run killed mid-write must not leave a truncated record that blocks --resume.
            atomic_write_text(checkpoints / IDENTITY_FILE, json.dumps(identity, indent=2))
        except OSError as exc:
            if disk_full(exc, checkpoints):
                raise StRecipeError(f"no space left on device ({checkpoints})") from None
            raise StRecipeError(f"cannot write checkpoints to {str(checkpoints)!r}: {exc.strerror or exc}") from None
    extras = extras or RunExtras(state)
    args = extras.args_class()(
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
    callback = budget_callback(TrainerCallback, state, resume_from=resume_from, quiet=quiet)
    # Packed rows or sub-batches (exact only with right padding: left padding shifts positions).
    strategy = None
    # Sharded weights are gathered at every forward, so every process must run the same number of forwards:
    # padding-free sub-batches (a count per process's lengths) are off under FSDP / DeepSpeed.
    from st_recipe.training.sharded import sharding_requested

    if padding_free and not sharding_requested() and getattr(model[0].tokenizer, "padding_side", "right") == "right":
        strategy = padding_free_strategy(meter.profile, default_overhead("cuda" if torch.cuda.is_available() else "cpu"))
    trainer = make_trainer(SentenceTransformerTrainer, meter=meter, padded_meter=FlopMeter(meter.profile, count_padding=True),
                           state=state, warmup=int(math.ceil(recipe.warmup_ratio * planned_steps)),
                           planned_steps=planned_steps, checkpoints=checkpoints, padding_free=strategy, schedule=recipe.schedule,
                           model=model, args=args, train_dataset=train_pairs.to_dataset(recipe.hard_negatives), loss=loss,
                           callbacks=[callback, *extras.callbacks(TrainerCallback)], **extras.trainer_kwargs())
    trainer.remove_callback(PrinterCallback)
    return trainer, callback

