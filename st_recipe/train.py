"""Recipe -> SentenceTransformerTrainer with a FLOP-budget callback -> run dir.

The run dir is a standard sentence-transformers folder (merged weights, built-in modules only) plus
``st_recipe.json``. It is written to a temporary sibling and renamed when complete; checkpoints live in
``<out>.checkpoints/`` beside it so ``resume=True`` continues a killed run with the same result.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_recipe._files import read_json_object, replace_dir
from st_recipe.errors import StRecipeError
from st_recipe.flops import FlopMeter, format_flops, lengths_from_mask
from st_recipe.recipes import Recipe

RUN_RECORD = "st_recipe.json"
TRAINABLE_STATE = "trainable_state.pt"
SAMPLE_PAIRS_FOR_COST = 2048
HELDOUT_PAIRS = 500


@dataclass
class RunResult:
    """What a finished run reports (the same facts as ``st_recipe.json``)."""

    out: Path
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def spent_fraction(self) -> float:
        """FLOPs spent / budget."""
        return float(self.record["flops"]["spent_fraction"])


def checkpoint_dir(out: Path) -> Path:
    """Where a run's checkpoints live: beside the run dir."""
    return out.with_name(out.name + ".checkpoints")


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _prepare_out(out: Path, *, overwrite: bool, resume: bool) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    if out.exists() and not overwrite:
        raise StRecipeError(f"output folder {str(out)!r} already exists; pass --overwrite to replace it")
    if out.exists() and out.is_file():
        raise StRecipeError(f"output path {str(out)!r} is a file")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StRecipeError(f"cannot create the output folder's parent {str(parent)!r}: {exc.strerror}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StRecipeError(f"output folder {str(out)!r} is not writable (no write permission on {str(parent)!r})")
    ckpt = checkpoint_dir(out)
    if ckpt.exists() and not resume:
        if overwrite:
            shutil.rmtree(ckpt, ignore_errors=True)
        else:
            raise StRecipeError(f"{str(ckpt)!r} holds checkpoints of an unfinished run; pass --resume to continue it or --overwrite to start again")


def _split_heldout(data: Any, source: str) -> tuple[Any, Any]:
    """Training pairs and held-out pairs (the builtin set has its own test split)."""
    from st_recipe.data import PairData, load_pairs

    if source in (None, "", "builtin"):
        return data, load_pairs("builtin", split="test")
    n = min(HELDOUT_PAIRS, max(2, len(data) // 20))
    if len(data) - n < 2:
        return data, None
    train = PairData(anchors=data.anchors[n:], positives=data.positives[n:], source=data.source, stats=data.stats)
    held = PairData(anchors=data.anchors[:n], positives=data.positives[:n], source=data.source + " (held out)", stats=data.stats)
    return train, held


def heldout_scores(model: Any, held: Any, temperature: float, batch_size: int = 64) -> dict[str, float]:
    """Symmetric InfoNCE loss and top-1 retrieval accuracy on held-out pairs (in-set negatives)."""
    import torch

    anchors = model.encode(held.anchors, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True)
    positives = model.encode(held.positives, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True)
    scores = anchors @ positives.T / temperature
    labels = torch.arange(len(anchors), device=scores.device)
    loss = (torch.nn.functional.cross_entropy(scores, labels) + torch.nn.functional.cross_entropy(scores.T, labels)) / 2
    acc = (scores.argmax(dim=1) == labels).float().mean()
    return {"infonce": round(float(loss), 5), "top1_accuracy": round(float(acc), 5), "pairs": len(anchors)}


def _pair_cost(model: Any, data: Any, meter: FlopMeter, max_len: int, seed: int) -> float:
    """Mean exact FLOPs of one pair (both texts), measured on a sample of the training data."""
    import random

    idx = list(range(len(data)))
    random.Random(seed).shuffle(idx)
    idx = idx[:SAMPLE_PAIRS_FOR_COST]
    tok = model[0].tokenizer
    lengths = []
    for texts in ([data.anchors[i] for i in idx], [data.positives[i] for i in idx]):
        enc = tok(texts, truncation=True, max_length=max_len, padding=False)
        lengths.append([len(x) for x in enc["input_ids"]])
    return meter.batch_flops(lengths) / len(idx)


def _schedule(warmup: int, planned: int) -> Any:
    """Linear warmup then cosine to 0 at ``planned`` steps, 0 after (never rising again)."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if step >= planned:
            return 0.0
        progress = (step - warmup) / max(1, planned - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("st-recipe", "torch", "transformers", "sentence-transformers", "peft", "accelerate", "datasets"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "world_size": _world()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpus"] = torch.cuda.device_count()
    return info


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
) -> RunResult:
    """Train ``recipe`` on ``data`` until its FLOP budget is spent; write the run dir ``out``."""
    import torch

    from st_recipe.data import check_enough, load_pairs
    from st_recipe.encoder import build_encoder, encoder_source, save_encoder
    from st_recipe.flops import profile_model
    from st_recipe.methods import get_method

    out = Path(out)
    if _is_main():
        _prepare_out(out, overwrite=overwrite, resume=resume)
    ckpt_root = checkpoint_dir(out)
    source = data if isinstance(data, str) or data is None else getattr(data, "source", "pairs")
    pairs_all = data if hasattr(data, "anchors") else load_pairs(
        data or "builtin", anchor_column=anchor_column, positive_column=positive_column, seed=recipe.seed
    )
    train_pairs, held = _split_heldout(pairs_all, source if isinstance(source, str) else "")
    check_enough(train_pairs, recipe.batch_size)
    world = _world()
    if recipe.batch_size % world:
        raise StRecipeError(f"batch size {recipe.batch_size} is not divisible by the {world} processes")

    started = time.time()
    torch.manual_seed(recipe.seed)
    model = build_encoder(recipe.model, pooling=recipe.pooling, max_seq_length=recipe.max_seq_length, seed=recipe.seed)
    source_info = encoder_source(model)
    before = heldout_scores(model, held, recipe.temperature) if held is not None and _is_main() else None
    method = get_method(recipe.method, **recipe.method_args)
    report = method.apply(model)
    profile = profile_model(model)
    meter = FlopMeter(profile)
    padded_meter = FlopMeter(profile, count_padding=True)

    budget = recipe.budget
    per_pair = _pair_cost(model, train_pairs, meter, recipe.max_seq_length, recipe.seed)
    if budget is None:
        budget = per_pair * recipe.pairs
    per_batch = per_pair * recipe.batch_size
    planned_steps = int(budget // per_batch)
    if planned_steps < 1:
        raise StRecipeError(
            f"budget {format_flops(budget)} FLOP is too small for one step of {recipe.batch_size} pairs "
            f"(about {format_flops(per_batch)} FLOP on this data); raise the budget or lower the batch size"
        )
    warmup = int(math.ceil(recipe.warmup_ratio * planned_steps))
    # Generous slack past the plan: the exact budget check, not max_steps, ends the run (the LR stays at 0
    # after the planned steps, so an optimistic estimate cannot push training past the schedule).
    max_steps = 2 * planned_steps + 10
    epochs = planned_steps * recipe.batch_size / len(train_pairs)

    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )
    from transformers import TrainerCallback

    loss_kwargs = dict(scale=1.0 / recipe.temperature, directions=("query_to_doc", "doc_to_query"),
                       partition_mode="per_direction", gather_across_devices=world > 1)
    if recipe.mini_batch_size:
        loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=recipe.mini_batch_size, **loss_kwargs)
    else:
        loss = MultipleNegativesRankingLoss(model, **loss_kwargs)

    state: dict[str, Any] = {"step_flops": 0.0, "step_padded": 0.0, "step_tokens": 0, "step_pairs": 0, "losses": [],
                             "stopped_by": "max_steps", "partial_final_batch": None}

    class BudgetTrainer(SentenceTransformerTrainer):
        """Meters the real tokens of every training batch and never runs a step past the budget."""

        def compute_loss(self, model_: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
            if model_.training and not return_outputs:
                inputs = self._within_budget(inputs)
            return super().compute_loss(model_, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

        def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
            # Checkpoints hold only what trains (frozen weights come back from the base model), under the
            # live module names, so adapters and Propulsion scales reload exactly.
            if self.is_deepspeed_enabled or self.is_fsdp_enabled:
                return super()._save(output_dir, state_dict)
            target = Path(output_dir or self.args.output_dir)
            target.mkdir(parents=True, exist_ok=True)
            trainable = {n: p.detach().cpu() for n, p in self.model.named_parameters() if p.requires_grad}
            torch.save(trainable, target / TRAINABLE_STATE)

        def _load_from_checkpoint(self, checkpoint_path: str, model: Any = None) -> None:
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

        def add_model_card_callback(self, default_args_dict: dict[str, Any]) -> None:
            """No automatic card: the publisher writes one from st_recipe.json (and this saves the widget pass)."""

        def _within_budget(self, inputs: dict[str, Any]) -> dict[str, Any]:
            masks = [k for k in inputs if k.endswith("attention_mask")]
            sides = [lengths_from_mask(inputs[k]) for k in masks]
            cost = torch.tensor([meter.batch_flops(sides)], dtype=torch.float64)
            if world > 1 and torch.distributed.is_initialized():
                torch.distributed.all_reduce(cost)
            remaining = budget - totals["flops"]
            if float(cost) > remaining:
                # The whole batch does not fit. One process: train a final partial batch that does (the
                # budget is then met to within one pair); several: stop here, all ranks agreeing.
                k = _pairs_that_fit(sides, remaining, profile) if world == 1 else 0
                if k < 2:
                    raise _BudgetReached()
                rows = len(sides[0])
                inputs = {key: (v[:k] if hasattr(v, "shape") and v.shape[:1] == (rows,) else v) for key, v in inputs.items()}
                sides = [s[:k] for s in sides]
                state["partial_final_batch"] = k
            state["step_flops"] += meter.batch_flops(sides)
            state["step_padded"] += padded_meter.batch_flops(sides)
            state["step_tokens"] += sum(sum(s) for s in sides)
            state["step_pairs"] += len(sides[0]) if sides else 0
            return inputs

        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            if self.lr_scheduler is None:
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                    optimizer or self.optimizer, _schedule(warmup, planned_steps)
                )
            return self.lr_scheduler

    totals = {"flops": 0.0, "padded": 0.0, "tokens": 0, "pairs": 0}

    class BudgetCallback(TrainerCallback):
        """Adds each step's global FLOPs and stops before the step that would exceed the budget."""

        def __init__(self) -> None:
            self.bar: Any = None
            self.t0 = time.time()
            self.pairs_at_start = 0

        def on_train_begin(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            resume_from = state.get("resume_from")
            if resume_from:
                saved = json.loads((Path(resume_from) / "flop_meter.json").read_text())
                totals.update(saved["totals"])
                state["losses"] = saved["losses"]
            self.pairs_at_start = totals["pairs"]
            if not quiet and _is_main():
                from tqdm.auto import tqdm

                # In a log file (CI, nohup) every redraw is a new line; update it twice a minute instead.
                interval = 0.1 if sys.stderr.isatty() else 30.0
                self.bar = tqdm(total=budget, unit="FLOP", unit_scale=True, desc="training", dynamic_ncols=True,
                                initial=min(totals["flops"], budget), mininterval=interval)

        def on_step_end(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            step = torch.tensor([state["step_flops"], state["step_padded"], float(state["step_tokens"]),
                                 float(state["step_pairs"])], dtype=torch.float64)
            if world > 1 and torch.distributed.is_initialized():
                torch.distributed.all_reduce(step)
            flops, padded, tokens, pairs = (float(x) for x in step)
            state["step_flops"] = state["step_padded"] = 0.0
            state["step_tokens"] = state["step_pairs"] = 0
            totals["flops"] += flops
            totals["padded"] += padded
            totals["tokens"] += int(tokens)
            totals["pairs"] += int(pairs)
            if self.bar is not None:
                elapsed = max(time.time() - self.t0, 1e-9)
                last = f"{state['losses'][-1]:.3f}" if state["losses"] else "-"
                self.bar.set_postfix_str(
                    f"{totals['flops'] / budget:.1%} of budget, loss {last}, "
                    f"{(totals['pairs'] - self.pairs_at_start) / elapsed:.0f} pairs/s",
                    refresh=False,  # the update below redraws, at most every mininterval
                )
                self.bar.update(min(flops, max(0.0, budget - self.bar.n)))
            if state["partial_final_batch"]:
                state["stopped_by"] = "budget"
                control.should_training_stop = True
                control.should_save = False

        def on_log(self, args: Any, st: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                state["losses"].append(round(float(logs["loss"]), 6))

        def on_save(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            if _is_main():
                target = Path(args.output_dir) / f"checkpoint-{st.global_step}"
                if target.is_dir():
                    (target / "flop_meter.json").write_text(json.dumps({"totals": totals, "losses": state["losses"]}))

        def on_train_end(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    resume_from = None
    if resume:
        resume_from = _latest_checkpoint(ckpt_root)
        if resume_from is not None:
            _check_same_run(ckpt_root, recipe, str(source))
    if _is_main():
        ckpt_root.mkdir(parents=True, exist_ok=True)
        (ckpt_root / "run.json").write_text(json.dumps({"recipe": recipe.to_dict(), "data": str(source)}, indent=2))
    state["resume_from"] = resume_from

    bf16 = recipe.precision == "bf16"
    fp16 = recipe.precision == "fp16"
    args = SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_root),
        max_steps=max_steps,
        per_device_train_batch_size=recipe.batch_size // world,
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        warmup_steps=0,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="steps",
        save_steps=save_steps or max(1, planned_steps // 10),
        save_total_limit=2,
        logging_steps=1,
        report_to=[],
        seed=recipe.seed,
        data_seed=recipe.seed,
        bf16=bf16,
        fp16=fp16,
        use_cpu=not torch.cuda.is_available(),
        **_checkpointing_args(gradient_checkpointing),
        disable_tqdm=True,
        dataloader_drop_last=True,
        ddp_find_unused_parameters=False,
        save_only_model=False,
    )
    trainer = BudgetTrainer(model=model, args=args, train_dataset=train_pairs.to_dataset(), loss=loss,
                            callbacks=[BudgetCallback()])
    trainer.remove_callback(_progress_callback_class())
    callback = next(c for c in trainer.callback_handler.callbacks if isinstance(c, BudgetCallback))
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except _BudgetReached:
        state["stopped_by"] = "budget"
    finally:
        if callback.bar is not None:
            callback.bar.close()
    wall = time.time() - started

    if totals["flops"] > budget * (1 + 1e-9):
        raise StRecipeError(f"internal error: spent {totals['flops']:.4g} FLOP over the budget {budget:.4g}")

    method.merge(model)
    result_record: dict[str, Any] = {}
    if _is_main():
        after = heldout_scores(model, held, recipe.temperature) if held is not None else None
        n, nt = report.n_params, report.n_trainable
        paper_cost = method.flops_per_token(n, nt)
        record = {
            "format": 1,
            "status": "finished",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "repo_id": repo_id,
            "recipe": recipe.to_dict(),
            "model": source_info,
            "random_init": bool(source_info.get("random_init")),
            "method": {"name": method.name, "args": method.args(), "params": report.to_dict(), "cost_formula": method.cost_formula},
            "data": {"source": str(source), "train_pairs": len(train_pairs), "heldout_pairs": len(held) if held is not None else 0,
                     "stats": pairs_all.stats.as_dict() if hasattr(pairs_all.stats, "as_dict") else {}, "epochs": round(epochs, 4)},
            "flops": {
                "budget": budget,
                "planned": planned_steps * per_batch,
                "spent": totals["flops"],
                "spent_fraction": totals["flops"] / budget,
                "executed_with_padding": totals["padded"],
                "paper_formula": paper_cost * totals["tokens"],
                "per_pair_estimate": per_pair,
                "profile": profile.to_dict(),
                "stopped_by": state["stopped_by"],
                "not_counted": "GradCache's extra embedding pass and gradient-checkpointing recompute" if (recipe.mini_batch_size or gradient_checkpointing) else None,
            },
            "steps": trainer.state.global_step,
            "planned_steps": planned_steps,
            "pairs_seen": totals["pairs"],
            "tokens_seen": totals["tokens"],
            "loss": {"final": state["losses"][-1] if state["losses"] else None, "per_step": state["losses"]},
            "heldout": {"before": before, "after": after},
            "wall_time_s": round(wall, 2),
            "hardware": _hardware(),
            "versions": _versions(),
            "seed": recipe.seed,
            "gradient_checkpointing": gradient_checkpointing,
            "resumed": resume_from is not None,
        }
        _write_run_dir(model, record, out, save_encoder)
        if not keep_checkpoints:
            shutil.rmtree(ckpt_root, ignore_errors=True)
        result_record = record
    if world > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return RunResult(out=out, record=result_record)


class _BudgetReached(Exception):
    """Raised before a step whose FLOPs would exceed the budget."""


def _pairs_that_fit(sides: list[list[int]], remaining: float, profile: Any) -> int:
    """How many leading pairs of a batch fit in the remaining budget (the meter's cost per pair)."""
    per_pair = [0.0] * len(sides[0])
    for lengths in sides:
        for i, t in enumerate(lengths):
            per_pair[i] += profile.sequence_flops(t)
    total, k = 0.0, 0
    for cost in per_pair:
        if total + cost > remaining:
            break
        total += cost
        k += 1
    return k


def _progress_callback_class() -> Any:
    from transformers.trainer_callback import PrinterCallback

    return PrinterCallback


def _latest_checkpoint(root: Path) -> Path | None:
    if not root.is_dir():
        return None
    ckpts = [p for p in root.glob("checkpoint-*") if p.is_dir() and (p / "flop_meter.json").is_file()]
    if not ckpts:
        return None
    return max(ckpts, key=lambda p: int(p.name.split("-")[-1]))


def _check_same_run(root: Path, recipe: Recipe, source: str) -> None:
    saved_path = root / "run.json"
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text())
    if saved.get("recipe") != recipe.to_dict() or saved.get("data") != source:
        raise StRecipeError(f"the checkpoints in {str(root)!r} come from a different recipe or data; use --overwrite to start again")


def _checkpointing_args(enabled: bool) -> dict[str, Any]:
    """Activation-checkpointing TrainingArguments under their current name (``gradient_*`` before transformers 5.x)."""
    import dataclasses

    from sentence_transformers import SentenceTransformerTrainingArguments

    names = {f.name for f in dataclasses.fields(SentenceTransformerTrainingArguments)}
    prefix = "activation" if "activation_checkpointing" in names else "gradient"
    return {f"{prefix}_checkpointing": enabled,
            f"{prefix}_checkpointing_kwargs": {"use_reentrant": False} if enabled else None}


def _write_run_dir(model: Any, record: dict[str, Any], out: Path, save_encoder: Any) -> None:
    """Save model + record into a temporary sibling, then swap it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        save_encoder(model, tmp)
        (tmp / RUN_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``st_recipe.json`` record of a run dir (one-line errors for anything else)."""
    p = Path(path)
    rec = p / RUN_RECORD
    if not p.is_dir():
        raise StRecipeError(f"run dir {str(p)!r} does not exist")
    if not rec.is_file():
        raise StRecipeError(f"{str(p)!r} is not a finished st-recipe run (no {RUN_RECORD})")
    data = read_json_object(rec)
    if data.get("status") != "finished":
        raise StRecipeError(f"run {str(p)!r} did not finish (status {data.get('status')!r})")
    return data
