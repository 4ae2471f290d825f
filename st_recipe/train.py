"""Recipe -> SentenceTransformerTrainer with a FLOP-budget callback -> run dir.

The run dir is a standard sentence-transformers folder (merged weights, built-in modules only) plus
``st_recipe.json``. It is written to a temporary sibling and renamed when complete; checkpoints live in
``<out>.checkpoints/`` beside it so ``resume=True`` continues a killed run with the same result.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_recipe._files import read_json_object, replace_dir
from st_recipe.errors import StRecipeError
from st_recipe.flops import FlopMeter, format_flops
from st_recipe.recipes import Recipe
from st_recipe.training.trainer import (
    BudgetReached,
    BudgetState,
    budget_callback,
    is_main,
    latest_checkpoint,
    make_trainer,
    world_size,
)

logger = logging.getLogger("st_recipe")

RUN_RECORD = "st_recipe.json"
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


_is_main = is_main
_world = world_size


def _prepare_out(out: Path, *, overwrite: bool, resume: bool) -> None:
    """Check that ``out`` may be written (and replaced only when it is safe) before any work starts."""
    parent = out.parent
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise StRecipeError(f"output path {str(out)!r} is a file, not a folder")
        is_run = (out / RUN_RECORD).is_file()
        empty = not any(out.iterdir())
        if not overwrite and not empty:
            raise StRecipeError(f"output folder {str(out)!r} already exists; pass --overwrite to replace it")
        if overwrite and not (is_run or empty):
            # --overwrite must never wipe a folder of the user's that is not an earlier run.
            raise StRecipeError(f"refusing to replace {str(out)!r}: it is neither an earlier st-recipe run dir "
                                f"(no {RUN_RECORD}) nor empty; choose another --out")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        # Probe with a real file: access() says yes for root on read-only or virtual file systems.
        probe = Path(tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=parent))
        probe.rmdir()
    except OSError as exc:
        raise StRecipeError(f"cannot write the output folder {str(out)!r}: {exc.strerror or exc}") from None
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

    if not str(out).strip():
        raise StRecipeError("the output folder (--out) must not be empty")
    # An absolute path gives '.' or 'runs/' a real name for the temporary siblings and checkpoints.
    out = Path(os.path.abspath(os.path.expanduser(out)))
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

    resume_from = None
    if resume:
        resume_from = latest_checkpoint(ckpt_root)
        if resume_from is not None:
            _check_same_run(ckpt_root, recipe, str(source))
        elif _is_main():
            logger.warning("nothing to resume in %s: starting a fresh run", ckpt_root)
    if _is_main():
        try:
            ckpt_root.mkdir(parents=True, exist_ok=True)
            for stale in ckpt_root.glob(".staging-*"):  # a checkpoint a crash left half-written
                shutil.rmtree(stale, ignore_errors=True)
            (ckpt_root / "run.json").write_text(json.dumps({"recipe": recipe.to_dict(), "data": str(source)}, indent=2))
        except OSError as exc:
            raise StRecipeError(f"cannot write checkpoints to {str(ckpt_root)!r}: {exc.strerror or exc}") from None

    state = BudgetState(budget=budget)
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
        save_total_limit=None,  # the budget trainer keeps the last complete checkpoints itself
        logging_steps=1,
        report_to=[],
        seed=recipe.seed,
        data_seed=recipe.seed,
        bf16=recipe.precision == "bf16",
        fp16=recipe.precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        **_checkpointing_args(gradient_checkpointing),
        disable_tqdm=True,
        dataloader_drop_last=True,
        ddp_find_unused_parameters=False,
        save_only_model=False,
    )
    callback = budget_callback(TrainerCallback, state, resume_from=resume_from, quiet=quiet)
    trainer = make_trainer(SentenceTransformerTrainer, meter=meter, padded_meter=padded_meter, state=state,
                           warmup=warmup, planned_steps=planned_steps, checkpoints=ckpt_root,
                           model=model, args=args, train_dataset=train_pairs.to_dataset(), loss=loss,
                           callbacks=[callback])
    trainer.remove_callback(_progress_callback_class())
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except BudgetReached:
        state.stopped_by = "budget"
    finally:
        callback.close(trainer.state.global_step)
    wall = time.time() - started
    totals = {"flops": state.flops, "padded": state.padded, "tokens": state.tokens, "pairs": state.pairs}

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
                "stopped_by": state.stopped_by,
                "not_counted": "GradCache's extra embedding pass and gradient-checkpointing recompute" if (recipe.mini_batch_size or gradient_checkpointing) else None,
            },
            "steps": trainer.state.global_step,
            "planned_steps": planned_steps,
            "pairs_seen": totals["pairs"],
            "tokens_seen": totals["tokens"],
            "loss": {"final": state.losses[-1] if state.losses else None, "per_step": state.losses},
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


def _progress_callback_class() -> Any:
    from transformers.trainer_callback import PrinterCallback

    return PrinterCallback


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
