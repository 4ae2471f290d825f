"""``st-recipe train``: every input checked before torch is imported, then train within the budget."""

from __future__ import annotations

import json
import sys

import click

from st_recipe.cli._common import (
    check_batch_size,
    check_data,
    check_min,
    check_model,
    check_run_out,
    check_writable,
    display,
    model_slug,
    quiet_libraries,
)
from st_recipe.errors import StRecipeError


@click.command("train")
@click.option("--budget", default=None, help="Training compute in FLOPs, e.g. 1e17 (optional with --recipe/--zoo).")
@click.option("--recipe", "recipe_file", default=None, help="A recipe YAML/JSON file (or registry name).")
@click.option("--zoo", "zoo_name", default=None, help="A named registry/zoo recipe.")
@click.option("--model", default=None, help="Base model: catalogue name, Hub id, local folder or random:<name>.")
@click.option("--method", default=None, help="Fine-tuning method (full, freeze, bias, lora, propulsion, peft).")
@click.option("--method-arg", "method_args", multiple=True, metavar="KEY=VALUE", help="Method argument (repeatable).")
@click.option("--data", default="builtin", show_default=True,
              help="Pairs: 'builtin' (offline docstring pairs), a .jsonl/.csv/.tsv/.parquet file, or a Hub dataset id.")
@click.option("--anchor-column", default=None, help="Column holding the anchor/query text.")
@click.option("--positive-column", default=None, help="Column holding the positive text.")
@click.option("--out", default=None, help="Run dir to write (default runs/<model>-<method>-<budget>).")
@click.option("--resume", is_flag=True, help="Continue from the checkpoints beside --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@click.option("--batch-size", type=int, default=None, help="Pairs per batch (default: the recipe's, 1024).")
@click.option("--mini-batch-size", type=int, default=None, help="GradCache mini-batch (keeps the full batch's negatives).")
@click.option("--lr", "learning_rate", type=float, default=None, help="Peak learning rate.")
@click.option("--max-seq-length", type=int, default=None, help="Truncate texts to this many tokens.")
@click.option("--bf16", is_flag=True, help="bf16 mixed precision.")
@click.option("--gradient-checkpointing", is_flag=True, help="Trade compute for memory (use_reentrant=False).")
@click.option("--save-steps", type=int, default=None, help="Checkpoint every N steps (default: a tenth of the run).")
@click.option("--seed", type=int, default=None, help="Random seed.")
@click.option("--repo-id", default=None, help="Intended Hub repo (ORG/NAME), recorded for eval and publish.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_cmd(budget: str | None, recipe_file: str | None, zoo_name: str | None, model: str | None, method: str | None,
              method_args: tuple[str, ...], data: str, anchor_column: str | None, positive_column: str | None,
              out: str | None, resume: bool, overwrite: bool, batch_size: int | None, mini_batch_size: int | None,
              learning_rate: float | None, max_seq_length: int | None, bf16: bool, gradient_checkpointing: bool,
              save_steps: int | None, seed: int | None, repo_id: str | None, quiet: bool) -> None:
    """Train an embedding model within a FLOP budget; writes a run dir that loads with SentenceTransformer(path)."""
    from st_recipe.recipe_builder import build_recipe

    # Everything checkable without torch is checked first, so bad input fails in well under a second.
    if recipe_file is not None and zoo_name is not None:
        raise StRecipeError("give --recipe or --zoo, not both")
    check_batch_size(batch_size)
    check_min(mini_batch_size, "--mini-batch-size", 1)
    check_min(save_steps, "--save-steps", 1)
    if out is not None and not out.strip():
        raise StRecipeError("the output folder (--out) must not be empty")
    if repo_id is not None:
        from st_recipe.publishing import validate_repo_id

        validate_repo_id(repo_id)
    if zoo_name is not None:
        from st_recipe.zoo import get_entry

        get_entry(zoo_name)
    if model is not None:
        check_model(model)
    recipe = build_recipe(budget=budget, recipe=recipe_file or zoo_name, model=model, method=method,
                          method_args=method_args, batch_size=batch_size, mini_batch_size=mini_batch_size,
                          learning_rate=learning_rate, max_seq_length=max_seq_length, bf16=bf16, seed=seed)
    from st_recipe.planner import budget_label

    target = out or f"runs/{model_slug(recipe.model)}-{recipe.method}-{budget_label(recipe.budget or 0)}"
    check_run_out(target, overwrite=overwrite, resume=resume)
    if model is None:
        check_model(recipe.model)  # the planned or recipe's model
    pairs = check_data(data, anchor_column=anchor_column, positive_column=positive_column, seed=recipe.seed)
    check_writable(target, "--out")
    if not quiet:
        click.echo(f"model {display(recipe.model)}; method {recipe.method} {json.dumps(recipe.method_args)}; "
                   f"budget {recipe.budget:.4g} FLOP; batch {recipe.batch_size}; data {data}; out {target}", err=True)
    try:
        quiet_libraries()
        from st_recipe.training import train

        result = train(recipe, pairs, target, resume=resume, overwrite=overwrite,
                       gradient_checkpointing=gradient_checkpointing, save_steps=save_steps, quiet=quiet,
                       anchor_column=anchor_column, positive_column=positive_column, repo_id=repo_id)
    except KeyboardInterrupt:
        # Without --quiet the progress bar's line is still open; end it so the hint is a line of its own.
        click.echo(("" if quiet else "\n") + interrupted_hint(target), err=True)
        sys.exit(130)
    rec = result.record
    if rec is None:
        return
    f = rec.flops
    click.echo(f"wrote {result.out}  ({rec.steps} steps, {rec.pairs_seen:,} pairs, {rec.tokens_seen:,} tokens, "
               f"{rec.wall_time_s:.0f} s)")
    click.echo(f"FLOPs spent {f.spent:.4g} of {f.budget:.4g} ({f.spent_fraction:.2%}); "
               f"paper formula {f.paper_formula:.4g}; executed incl. padding {f.executed_with_padding:.4g}")
    b, a = rec.heldout.before, rec.heldout.after
    if b and a:
        click.echo(f"held-out ({a.pairs} pairs): InfoNCE {b.infonce:.3f} -> {a.infonce:.3f}, "
                   f"top-1 accuracy {b.top1_accuracy:.1%} -> {a.top1_accuracy:.1%}")


def interrupted_hint(target: str) -> str:
    """What to do after Ctrl-C, depending on whether a checkpoint was saved."""
    import os
    from pathlib import Path

    out = Path(os.path.abspath(os.path.expanduser(target)))
    ckpt = out.with_name(out.name + ".checkpoints")
    if any(ckpt.glob("checkpoint-*")):
        return (f"interrupted; run the same command with --resume to continue from the last checkpoint "
                f"in {ckpt}")
    if ckpt.exists():
        return ("interrupted before the first checkpoint; run the same command with --overwrite to start "
                "again (or --save-steps N to checkpoint sooner)")
    return "interrupted before training started; nothing was written"


# ----------------------------------------------------------------------------------------------------
# Checks that run before any heavy import (torch, transformers), so bad input fails in well under a second


