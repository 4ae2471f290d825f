"""The budget trainer: a SentenceTransformerTrainer that meters every batch exactly and stops at a FLOP budget.

Its state lives in one :class:`BudgetState` object (totals, the current step's counts, the loss curve,
why it stopped), which checkpoints save and ``--resume`` restores. Checkpoints are written to a hidden
staging folder and renamed into place only when complete, so a crash or a full disk never leaves a
checkpoint that a later resume could half-trust.

:class:`BudgetTrainer` and :class:`BudgetCallback` are mixins defined here and mixed into
SentenceTransformerTrainer and TrainerCallback when a run starts (:func:`make_trainer`, :func:`budget_callback`),
so importing this module does not import sentence-transformers (about 12 s).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from st_recipe.costing.flops import CostProfile, FlopMeter, lengths_from_mask
from st_recipe.errors import StRecipeError
from st_recipe.run import CHECKPOINTS_KEPT, METER_STATE, TRAINABLE_STATE
from st_recipe.training.budget_state import BudgetState
from st_recipe.training.checkpoints import write_error as _write_error

# Without a terminal every redraw is a new log line: report at most this often instead.
LOG_INTERVAL_S = 30.0


def is_main() -> bool:
    """True on the process that writes (rank 0, or the only process)."""
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    """How many training processes share the global batch."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _distributed() -> bool:
    import torch

    return world_size() > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()


class BudgetReached(Exception):
    """Raised before a step whose FLOPs would exceed the budget."""


def pairs_that_fit(sides: list[list[int]], remaining: float, profile: CostProfile, world: int = 1) -> int:
    """The largest k such that the leading k pairs of every process's batch together fit in ``remaining``."""
    import torch

    per_pair = torch.zeros(len(sides[0]), dtype=torch.float64)
    for lengths in sides:
        per_pair += torch.tensor([profile.sequence_flops(t) for t in lengths], dtype=torch.float64)
    if world > 1 and _distributed():
        gathered = [torch.zeros_like(per_pair) for _ in range(world)]
        torch.distributed.all_gather(gathered, per_pair)
        stacked = torch.stack(gathered)
    else:
        stacked = per_pair[None, :]
    leading = stacked.cumsum(dim=1).sum(dim=0)  # cost of the first k pairs on every process, k = 1..rows
    return int((leading <= remaining).sum())


SCHEDULES = ("cosine", "linear", "constant")


def lr_schedule(warmup: int, planned: int, schedule: str = "cosine") -> Callable[[int], float]:
    """The LR factor per step: linear warm-up, then cosine or linear decay to 0 at ``planned`` steps, or constant."""
    if schedule not in SCHEDULES:
        raise StRecipeError(f"schedule must be {', '.join(SCHEDULES)}, not {schedule!r}")

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            # No end to reach: steps past the plan (an optimistic cost estimate) train at the peak LR too.
            return 1.0
        if step >= planned:
            return 0.0  # a decaying schedule never rises again past its planned end
        progress = (step - warmup) / max(1, planned - warmup)
        return 1.0 - progress if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def format_rate(pairs: float, seconds: float) -> str:
    """Throughput to three significant digits (whole from 100 up): ``1234 pairs/s``, ``0.42 pairs/s``, ``12.5 s/pair``."""

    def sig(x: float) -> str:
        return f"{x:.0f}" if x >= 100 else f"{x:.3g}"

    rate = pairs / seconds if seconds > 0 else 0.0
    if rate <= 0:
        return "0 pairs/s"
    # Below a tenth of a pair per second the rate's digits are all leading zeros: seconds per pair reads better.
    return f"{sig(rate)} pairs/s" if rate >= 0.1 else f"{sig(1 / rate)} s/pair"


if TYPE_CHECKING:  # what the mixins below are mixed into (imported lazily at run time: ~12 s)
    from sentence_transformers import SentenceTransformerTrainer as _TrainerBase
    from transformers import TrainerCallback as _CallbackBase
else:
    _TrainerBase = _CallbackBase = object


@dataclass
class BudgetSettings:
    """What a :class:`BudgetTrainer` needs beside a SentenceTransformerTrainer's own arguments.

    ``padding_free`` (:func:`~st_recipe.training.packing.padding_free_strategy`) encodes each side of a training
    batch without padding (packed rows or length-sorted sub-batches); the state's ``padded`` total then meters
    what those layouts execute.
    """

    meter: FlopMeter
    padded_meter: FlopMeter
    state: BudgetState
    warmup: int
    planned_steps: int
    checkpoints: Path
    padding_free: Any = None
    schedule: str = "cosine"


class BudgetTrainer(_TrainerBase):
    """Meters the real tokens of every training batch and never runs a step past the budget.

    A mixin for a SentenceTransformerTrainer class (imported by the caller, so importing this module stays
    cheap): ``class MyTrainer(BudgetTrainer, SentenceTransformerTrainer)``, built with ``budget=``
    :class:`BudgetSettings`; :func:`make_trainer` does this for a given base.
    """

    def __init__(self, *args: Any, budget: BudgetSettings, **kwargs: Any) -> None:
        self.budget_settings = budget
        self._staging: Path | None = None
        super().__init__(*args, **kwargs)

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        strategy = self.budget_settings.padding_free
        if model.training and not return_outputs:
            inputs = self._within_budget(inputs)
            if strategy is not None:
                from st_recipe.training.packing import padding_free

                try:
                    with padding_free(self.model, strategy):
                        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                                    num_items_in_batch=num_items_in_batch)
                finally:
                    self.budget_settings.state.step_padded += strategy.pop_executed()
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def _within_budget(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Meter this process's batch; trim it to the leading pairs that fit when the whole batch does not."""
        import torch

        meter, state = self.budget_settings.meter, self.budget_settings.state
        sides = [lengths_from_mask(inputs[k]) for k in inputs if k.endswith("attention_mask")]
        cost = torch.tensor([meter.batch_flops(sides)], dtype=torch.float64)
        if _distributed():
            torch.distributed.all_reduce(cost)
        if float(cost) > state.remaining:
            # The whole batch does not fit: train the leading pairs that do (the same count on every
            # process, so gathered in-batch negatives stay aligned) and stop after this step.
            world = world_size()
            k = pairs_that_fit(sides, state.remaining, meter.profile, world)
            if k * world < 2:
                raise BudgetReached()
            rows = len(sides[0])
            inputs = {key: (v[:k] if hasattr(v, "shape") and v.shape[:1] == (rows,) else v)
                      for key, v in inputs.items()}
            sides = [s[:k] for s in sides]
            state.partial_final_batch = k * world
        state.step_flops += meter.batch_flops(sides)
        if self.budget_settings.padding_free is None:  # padding-free layouts add what they ran in compute_loss
            state.step_padded += self.budget_settings.padded_meter.batch_flops(sides)
        state.step_tokens += sum(sum(s) for s in sides)
        state.step_pairs += len(sides[0]) if sides else 0
        return inputs

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        # Here, before the callbacks run: every report_to integration gets the budget's counts at each log.
        super().log({**logs, **self.budget_settings.state.metrics()}, *args, **kwargs)

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
        import torch

        if self.lr_scheduler is None:
            b = self.budget_settings
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer,
                                                                   lr_schedule(b.warmup, b.planned_steps, b.schedule))
        return self.lr_scheduler

    def add_model_card_callback(self, default_args_dict: dict[str, Any]) -> None:
        """No automatic card: the publisher writes one from st_recipe.json."""

    def _get_output_dir(self, trial: Any) -> str:
        # While a checkpoint is being written it goes to a hidden staging folder (see _save_checkpoint).
        return str(getattr(self, "_staging", None) or super()._get_output_dir(trial))

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        checkpoints, step = self.budget_settings.checkpoints, self.state.global_step
        final = checkpoints / f"checkpoint-{step}"
        # The same name on every process: each writes its own RNG state into it.
        staging = checkpoints / f".staging-{step}"
        self._staging = staging
        try:
            super()._save_checkpoint(model, trial)
            if _distributed():
                import torch

                torch.distributed.barrier()
            if is_main():
                inner = staging / f"checkpoint-{step}"
                (inner / METER_STATE).write_text(json.dumps(self.budget_settings.state.saved()), encoding="utf-8")
                shutil.rmtree(final, ignore_errors=True)
                os.replace(inner, final)
                shutil.rmtree(staging, ignore_errors=True)
                self._rotate()
        except (OSError, RuntimeError) as exc:
            if is_main():
                shutil.rmtree(staging, ignore_errors=True)
            raise _write_error(exc, final) from None
        finally:
            self._staging = None

    def _rotate(self) -> None:
        """Keep the newest :data:`CHECKPOINTS_KEPT` complete checkpoints."""
        done = sorted((p for p in self.budget_settings.checkpoints.glob("checkpoint-*") if (p / METER_STATE).is_file()),
                      key=lambda p: int(p.name.split("-")[-1]))
        for old in done[:-CHECKPOINTS_KEPT]:
            shutil.rmtree(old, ignore_errors=True)

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        # Checkpoints hold only what trains (frozen weights come back from the base model), under the
        # live module names, so adapters and Propulsion scales reload exactly.
        import torch

        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            # Sharded: the engine's own files (FSDP's save_fsdp_model, DeepSpeed's save_checkpoint, written
            # beside the optimizer state) are what a resume loads. The extra save_pretrained copy the base
            # class would write here reads this process's shards (it fails on FSDP2's DTensors, and is
            # empty under ZeRO-3); the run dir gets the gathered full weights at the end instead.
            return None
        target = Path(output_dir or self.args.output_dir)
        target.mkdir(parents=True, exist_ok=True)
        trainable = {n: p.detach().cpu() for n, p in self.model.named_parameters() if p.requires_grad}
        torch.save(trainable, target / TRAINABLE_STATE)

    def _load_from_checkpoint(self, checkpoint_path: str, model: Any = None) -> None:
        import torch

        if self.is_fsdp_enabled:
            # sentence-transformers' override rebuilds a whole model from the folder, which an FSDP checkpoint
            # is not: transformers' own loader reads save_fsdp_model's files into the sharded model.
            from transformers import Trainer

            return Trainer._load_from_checkpoint(self, checkpoint_path, model)
        path = Path(checkpoint_path) / TRAINABLE_STATE
        if not path.is_file():
            return super()._load_from_checkpoint(checkpoint_path)
        saved = torch.load(path, map_location="cpu", weights_only=True)
        params = dict(self.model.named_parameters())
        expected = {n for n, p in params.items() if p.requires_grad}
        if set(saved) != expected:
            raise StRecipeError(f"checkpoint {checkpoint_path!r} does not match this run's trainable parameters")
        with torch.no_grad():
            for name, tensor in saved.items():
                params[name].copy_(tensor.to(params[name].device))


def make_trainer(base: type, *, meter: FlopMeter, padded_meter: FlopMeter, state: BudgetState, warmup: int,
                 planned_steps: int, checkpoints: Path, padding_free: Any = None, schedule: str = "cosine",
                 **kwargs: Any) -> Any:
    """A :class:`BudgetTrainer` on top of ``base`` (SentenceTransformerTrainer; imported by the caller).

    The keyword arguments before ``**kwargs`` are the :class:`BudgetSettings`; ``kwargs`` go to ``base``.
    """
    settings = BudgetSettings(meter=meter, padded_meter=padded_meter, state=state, warmup=warmup,
                              planned_steps=planned_steps, checkpoints=checkpoints, padding_free=padding_free,
                              schedule=schedule)
    cls = type("BudgetTrainer", (BudgetTrainer, base), {"__doc__": BudgetTrainer.__doc__})
    return cls(budget=settings, **kwargs)


class BudgetCallback(_CallbackBase):
    """Adds each step's global counts, stops after a partial final batch, shows progress on rank 0.

    A mixin for transformers' ``TrainerCallback`` (imported by the caller): :func:`budget_callback` builds one.
    """

    def __init__(self, state: BudgetState, *, resume_from: Path | None, quiet: bool) -> None:
        self.budget_state = state
        self.resume_from = resume_from
        self.quiet = quiet
        self.bar: Any = None
        self.t0 = time.time()
        self.pairs_at_start = 0
        self.last_report = 0.0
        self.printed_step: int | None = None  # the step of the last printed line
        self.closed = False

    def on_train_begin(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
        state = self.budget_state
        if self.resume_from is not None:
            state.restore(json.loads((self.resume_from / METER_STATE).read_text(encoding="utf-8")))
        self.pairs_at_start = state.pairs
        self.t0 = self.last_report = time.time()
        if not self.quiet and is_main() and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.budget, unit="FLOP", unit_scale=True, desc="training",
                            dynamic_ncols=True, initial=min(state.flops, state.budget), mininterval=0.1)

    def on_step_end(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
        import torch

        state = self.budget_state
        step = torch.tensor([state.step_flops, state.step_padded, float(state.step_tokens),
                             float(state.step_pairs)], dtype=torch.float64)
        if _distributed():
            torch.distributed.all_reduce(step)
        flops, padded, tokens, pairs = (float(x) for x in step)
        state.step_flops = state.step_padded = 0.0
        state.step_tokens = state.step_pairs = 0
        state.flops += flops
        state.padded += padded
        state.tokens += int(tokens)
        state.pairs += int(pairs)
        if state.partial_final_batch:
            state.stopped_by = "budget"
            control.should_training_stop = True
            control.should_save = False

    def on_optimizer_step(self, args: Any, st: Any, control: Any, optimizer: Any = None, **kw: Any) -> None:
        # Read from the optimizer right after its update (the scheduler steps next), so the record holds
        # the LR that trained this step, not a recomputation of the schedule.
        self.budget_state.lrs.append(float(optimizer.param_groups[0]["lr"]))

    def on_log(self, args: Any, st: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        # Logging follows the step's end, so the loss shown here is this step's, not the one before.
        if logs and "loss" in logs:
            self.budget_state.losses.append(round(float(logs["loss"]), 6))
            self._report(st.global_step)

    def _report(self, step: int, final: bool = False) -> None:
        if self.quiet or not is_main():
            return
        state = self.budget_state
        elapsed = max(time.time() - self.t0, 1e-9)
        loss = f"{state.losses[-1]:.3f}" if state.losses else "-"
        text = (f"{state.flops / state.budget:.1%} of budget, loss {loss}, "
                f"{format_rate(state.pairs - self.pairs_at_start, elapsed)}")
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(max(0.0, min(state.flops, state.budget) - self.bar.n))
        # One line per step at most: when steps are slow every one prints, and the final line must not repeat it.
        elif self.printed_step != step and (final or time.time() - self.last_report >= LOG_INTERVAL_S):
            self.last_report = time.time()
            self.printed_step = step
            print(f"training: step {step}, {text}", file=sys.stderr, flush=True)

    def on_train_end(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
        self.close(st.global_step)

    def close(self, step: int) -> None:
        """Final progress report (called once, also when the budget ends training by exception)."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        else:
            self._report(step, final=True)


def budget_callback(base: type, state: BudgetState, *, resume_from: Path | None, quiet: bool) -> Any:
    """The callback that sums each step's FLOPs over processes, reports progress and stops at the budget.

    A :class:`BudgetCallback` on top of ``base`` (transformers' ``TrainerCallback``, imported by the caller).
    """
    cls = type("BudgetCallback", (BudgetCallback, base), {"__doc__": BudgetCallback.__doc__})
    return cls(state, resume_from=resume_from, quiet=quiet)
