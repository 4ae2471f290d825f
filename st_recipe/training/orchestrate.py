"""``train``: Recipe -> budget trainer -> run dir.

The run dir is a standard sentence-transformers folder (merged weights, built-in modules only) plus
``st_recipe.json``. It is written to a temporary sibling and renamed when complete; checkpoints live in
``<out>.checkpoints/`` beside it so ``resume=True`` continues a killed run with the same result.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st_recipe._io import OutputLock, atomic_write_text, disk_full
from st_recipe.costing.flops import FlopMeter
from st_recipe.errors import StRecipeError
from st_recipe.planning.planner import check_batch_divides
from st_recipe.planning.recipes import Recipe
from st_recipe.run import RunDir, RunRecord, latest_checkpoint
from st_recipe.training.assemble import (
    Built,
    Schedule,
    build_model,
    make_loss,
    padding_free_for,
    size_schedule,
    training_args,
)
from st_recipe.training.extras import RunExtras
from st_recipe.training.inputs import TrainData, load_training_data
from st_recipe.training.options import TrainOptions
from st_recipe.training.precheck import default_out
from st_recipe.training.record import run_record
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


def _drop_unresumable(ckpt: Path, kept: bool) -> None:
    """After a failed run: remove its checkpoint folder unless it holds a complete checkpoint (or is ``kept``).

    Left behind, its record alone would make the next plain run refuse, naming an unfinished run that
    cannot be resumed. ``kept``: the folder a --resume was pointed at, which is the user's and stays.
    """
    if not kept and ckpt.is_dir() and latest_checkpoint(ckpt) is None:
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


def train(recipe: Recipe, data: Any = "builtin", options: TrainOptions | None = None,
          **overrides: Any) -> RunResult:
    """Train ``recipe`` on ``data`` until its FLOP budget is spent; write the run dir ``options.out``.

    ``options`` holds every option of the run (:class:`~st_recipe.training.options.TrainOptions`, defaults when
    None); keywords named like its fields override them, so ``train(recipe, data, out="runs/x", quiet=True)``
    works too (an unknown keyword is one line).

    The run holds ``<out>.lock`` until it returns: its run dir and checkpoints are this process's meanwhile.
    Steps: check the output folder (:func:`_open_run_dir`), load and split the data
    (:func:`~st_recipe.training.inputs.load_training_data`), build the model and method
    (:func:`~st_recipe.training.assemble.build_model`), size the schedule
    (:func:`~st_recipe.training.assemble.size_schedule`), run the budget trainer (:func:`_run_trainer`), write
    the record and the run dir (:func:`_finish`).
    """
    opts = TrainOptions.resolve(options, overrides)
    if opts.out is None:
        opts = dataclasses.replace(opts, out=default_out(recipe))
    if not is_main():
        return _train(recipe, data, opts)
    run_dir = RunDir.at(opts.out)
    run_dir.make_parent()  # RunDir.prepare would make it anyway; the lock file goes there
    with OutputLock(run_dir.path):
        ckpt = run_dir.checkpoints
        kept = opts.resume and ckpt.exists()
        try:
            return _train(recipe, data, opts)
        except BaseException:
            _drop_unresumable(ckpt, kept)
            raise


def _train(recipe: Recipe, data: Any, opts: TrainOptions) -> RunResult:
    """:func:`train`'s steps, run while holding the output lock (on rank 0)."""
    run_dir = _open_run_dir(opts)
    inputs = load_training_data(recipe, data, anchor_column=opts.anchor_column, positive_column=opts.positive_column,
                                mine_negatives=opts.mine_negatives)
    world = world_size()
    check_batch_divides(recipe.batch_size, world, "processes")
    started = time.time()
    built = build_model(recipe, inputs, mine_negatives=opts.mine_negatives, quiet=opts.quiet)
    schedule = size_schedule(recipe, built, inputs.train_pairs, mining_in_budget=opts.mining_in_budget)
    identity = {"recipe": recipe.to_dict(), "data": inputs.source}
    resume_from = _resume_point(run_dir.checkpoints, identity) if opts.resume else None
    state = BudgetState(budget=schedule.budget)
    extras = RunExtras.build(opts.tracking, opts.dev_eval, state, built.profile, run_dir.path)
    trainer, callback = _budget_trainer(built.model, recipe, inputs.train_pairs, state, built.meter, run_dir.checkpoints,
                                        schedule.planned_steps, identity=identity, save_steps=opts.save_steps,
                                        resume_from=resume_from, quiet=opts.quiet,
                                        gradient_checkpointing=opts.gradient_checkpointing,
                                        padding_free=opts.padding_free, extras=extras)
    _run_trainer(trainer, callback, state, extras, resume_from)
    wall = time.time() - started
    if state.flops > schedule.budget * (1 + 1e-9):
        raise StRecipeError(f"internal error: spent {state.flops:.4g} FLOP over the budget {schedule.budget:.4g}")
    record = _finish(run_dir, trainer, recipe, inputs, built, schedule, state, extras, opts, wall=wall,
                     resumed=resume_from is not None)
    if world > 1:
        import torch

        if torch.distributed.is_initialized():
            torch.distributed.barrier()
    return RunResult(out=run_dir.path, record=record)


def _open_run_dir(opts: TrainOptions) -> RunDir:
    """Step 1 of :func:`train`: on rank 0, check and prepare the output folder (the options checked themselves)."""
    run_dir = RunDir.at(opts.out)
    if is_main():
        run_dir.prepare(overwrite=opts.overwrite, resume=opts.resume)
    return run_dir


def _run_trainer(trainer: Any, callback: Any, state: BudgetState, extras: RunExtras, resume_from: Path | None) -> None:
    """Train until the budget (or max_steps) stops it, closing the progress report either way."""
    from st_recipe.training.sharded import warn_if_unsharded

    warn_if_unsharded(trainer)
    try:
        extras.before(trainer, resumed=resume_from is not None)
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except BudgetReached:
        state.stopped_by = "budget"
    finally:
        callback.close(trainer.state.global_step)
        strategy = getattr(getattr(trainer, "budget_settings", None), "padding_free", None)
        if strategy is not None:
            strategy.restore()
    extras.finish(trainer)


def _finish(run_dir: RunDir, trainer: Any, recipe: Recipe, inputs: TrainData, built: Built, schedule: Schedule,
            state: BudgetState, extras: RunExtras, opts: TrainOptions, *, wall: float, resumed: bool) -> RunRecord | None:
    """Last step of :func:`train`: gather and merge the weights, then (rank 0) write the run dir and its record."""
    from st_recipe.encoder import save_encoder
    from st_recipe.training.sharded import is_sharded, unsharded

    model, method = built.model, built.method
    if is_sharded(trainer):
        # FSDP / DeepSpeed ZeRO hold each process's slice of the weights: gather them (every process takes
        # part) into a fresh, unsharded encoder on rank 0, which then merges, scores and saves alone.
        model, method = unsharded(trainer, recipe)
    if model is not None:
        method.merge(model)
    if not is_main():
        return None
    record = run_record(recipe, inputs, built, model, method, schedule, state, trainer.state.global_step,
                        wall=wall, repo_id=opts.repo_id, gradient_checkpointing=opts.gradient_checkpointing,
                        resumed=resumed, dev=extras.record())
    _save_run(run_dir, lambda tmp: save_encoder(model, tmp), record)
    if not opts.keep_checkpoints:
        shutil.rmtree(run_dir.checkpoints, ignore_errors=True)
    return record


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
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    from st_recipe.training.trainer import budget_callback, make_trainer

    world = world_size()
    loss = make_loss(model, recipe, world)
    if is_main():
        _prepare_checkpoints(checkpoints, identity)
    extras = extras or RunExtras(state)
    args = training_args(recipe, checkpoints, planned_steps, save_steps=save_steps,
                         gradient_checkpointing=gradient_checkpointing, extras=extras, world=world)
    callback = budget_callback(TrainerCallback, state, resume_from=resume_from, quiet=quiet)
    strategy = padding_free_for(model, meter, padding_free)
    trainer = make_trainer(SentenceTransformerTrainer, meter=meter, padded_meter=FlopMeter(meter.profile, count_padding=True),
                           state=state, warmup=int(math.ceil(recipe.warmup_ratio * planned_steps)),
                           planned_steps=planned_steps, checkpoints=checkpoints, padding_free=strategy, schedule=recipe.schedule,
                           model=model, args=args, train_dataset=train_pairs.to_dataset(recipe.hard_negatives), loss=loss,
                           callbacks=[callback, *extras.callbacks(TrainerCallback)], **extras.trainer_kwargs())
    trainer.remove_callback(PrinterCallback)
    return trainer, callback


def _prepare_checkpoints(checkpoints: Path, identity: dict[str, Any]) -> None:
    """Make the checkpoint folder, drop half-written checkpoints and record what a resume must match."""
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
