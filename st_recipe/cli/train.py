"""``st-recipe train``: every input checked before torch is imported, then train within the budget."""

from __future__ import annotations

import json
import sys

import click

from st_recipe.cli._common import (
    check_batch_size,
    check_min,
    check_model,
    display,
    quiet_libraries,
)
from st_recipe.cli._extras import run_extras, run_extras_options
from st_recipe.errors import StRecipeError


@click.command("train")
@run_extras_options
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
@click.option("--temperature", type=float, default=None,
              help="InfoNCE temperature (default: the recipe's, 0.025; MultipleNegativesRankingLoss' scale 20 is 0.05).")
@click.option("--max-seq-length", type=int, default=None, help="Truncate texts to this many tokens.")
@click.option("--bf16", is_flag=True, help="bf16 mixed precision.")
@click.option("--gradient-checkpointing", is_flag=True, help="Trade compute for memory (use_reentrant=False).")
@click.option("--save-steps", type=int, default=None, help="Checkpoint every N steps (default: a tenth of the run).")
@click.option("--seed", type=int, default=None, help="Random seed.")
@click.option("--repo-id", default=None, help="Intended Hub repo (ORG/NAME), recorded for eval and publish.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--attention", type=click.Choice(["causal", "bidirectional"]), default=None,
              help="Decoder attention in training and encoding (default: the recipe's, causal). bidirectional sets "
                   "is_causal=false in the saved config.json; architectures that ignore it are refused.")
@click.option("--prompt", "prompts", multiple=True, metavar="NAME=TEXT",
              help='Instruction prompt (repeatable): query="..." is prepended to anchors, document="..." to '
                   'positives; stored in the model for encode(..., prompt_name="query").')
@click.option("--exclude-prompt-from-pooling", is_flag=True,
              help="Pool the text tokens only, not the prompt's (Pooling include_prompt=False).")
@click.option("--matryoshka-dims", default=None, metavar="D1,D2,...",
              help="Train with MatryoshkaLoss at these embedding sizes, e.g. 768,512,256,128,64 (each <= the model's "
                   "hidden size).")
@click.option("--hard-negatives", type=int, default=None, metavar="K",
              help="Train with K hard negatives per pair from the data's negative columns (negative, negative_1..., "
                   "BGE neg), added to the in-batch negatives; pairs with fewer are left out (counted).")
@click.option("--mine-negatives", type=int, default=None, metavar="K",
              help="Mine K hard negatives per training pair with the base model (sentence-transformers' "
                   "mine_hard_negatives) before training, then train with them.")
@click.option("--dry-run", is_flag=True,
              help="Print the recipe this command would train (JSON, provenance included) and exit; writes nothing.")
@click.option("--mining-in-budget", is_flag=True,
              help="With --mine-negatives: charge the mining pass's FLOPs to --budget (training gets the rest); "
                   "by default they are reported apart from it.")
@click.option("--padding-free/--no-padding-free", default=True, show_default=True,
              help="Encode each side of a batch without padding: packed rows, or length-sorted sub-batches "
                   "where packing does not check out (same loss and gradients; fewer FLOPs run).")
@click.option("--distributed", type=click.Choice(["ddp", "fsdp", "fsdp2", "deepspeed", "deepspeed-zero2",
                                                  "deepspeed-zero3"]), default=None,
              help="Print the `accelerate launch` command (a shipped config from recipes/launch/) that runs this "
                   "training over several GPUs or machines, and exit; nothing is started.")
@click.option("--gpus", type=int, default=None, help="With --distributed: GPUs per machine (default: the config's 8).")
@click.option("--nodes", type=int, default=1, show_default=True, help="With --distributed: machines.")
@click.option("--force", is_flag=True, help="Train a budget above the 1e26 FLOP ceiling.")
def train_cmd(budget: str | None, recipe_file: str | None, zoo_name: str | None, model: str | None, method: str | None,
              method_args: tuple[str, ...], data: str, anchor_column: str | None, positive_column: str | None,
              out: str | None, resume: bool, overwrite: bool, batch_size: int | None, mini_batch_size: int | None,
              learning_rate: float | None, temperature: float | None, max_seq_length: int | None, bf16: bool,
              gradient_checkpointing: bool, save_steps: int | None, seed: int | None, repo_id: str | None, quiet: bool,
              attention: str | None = None, prompts: tuple[str, ...] = (), exclude_prompt_from_pooling: bool = False,
              matryoshka_dims: str | None = None, hard_negatives: int | None = None, mine_negatives: int | None = None,
              padding_free: bool = True, distributed: str | None = None, gpus: int | None = None, force: bool = False,
              nodes: int = 1, mining_in_budget: bool = False, dry_run: bool = False) -> None:
    """Train an embedding model within a FLOP budget; writes a run dir that loads with SentenceTransformer(path)."""
    from st_recipe.planning.builder import build_recipe
    from st_recipe.planning.planner import check_budget_ceiling

    # Everything checkable without torch is checked first, so bad input fails in well under a second.
    levers = _check_flags(recipe_file, zoo_name, batch_size, mini_batch_size, save_steps, hard_negatives,
                          mine_negatives, mining_in_budget, out, repo_id, attention=attention, prompts=prompts,
                          include_prompt=not exclude_prompt_from_pooling, matryoshka_dims=matryoshka_dims)
    if model is not None and distributed is None and not dry_run:  # these only print, for other machines too
        check_model(model)
    recipe = build_recipe(budget=budget, recipe=recipe_file or zoo_name, model=model, method=method,
                          method_args=method_args, batch_size=batch_size, mini_batch_size=mini_batch_size,
                          learning_rate=learning_rate, temperature=temperature, max_seq_length=max_seq_length,
                          bf16=bf16, seed=seed, **levers)
    check_budget_ceiling(recipe.budget, force)
    if dry_run:
        click.echo(json.dumps(recipe.to_dict(), indent=2))
        return
    if distributed is not None:
        click.echo(distributed_command(distributed, recipe, gpus=gpus, nodes=nodes, bf16=bf16))
        return
    target, pairs = _check_inputs(recipe, out, data, model_given=model is not None, overwrite=overwrite,
                                  resume=resume, anchor_column=anchor_column, positive_column=positive_column,
                                  mine_negatives=mine_negatives, quiet=quiet)
    try:
        quiet_libraries()
        from st_recipe.training import TrainOptions, train

        options = TrainOptions(out=target, resume=resume, overwrite=overwrite, **run_extras(),
                               gradient_checkpointing=gradient_checkpointing, save_steps=save_steps, quiet=quiet,
                               anchor_column=anchor_column, positive_column=positive_column, repo_id=repo_id,
                               padding_free=padding_free, mine_negatives=bool(mine_negatives),
                               mining_in_budget=mining_in_budget)
        result = train(recipe, pairs, options)
    except KeyboardInterrupt:
        # Without --quiet the progress bar's line is still open; end it so the hint is a line of its own.
        click.echo(("" if quiet else "\n") + interrupted_hint(target), err=True)
        sys.exit(130)
    if result.record is not None:
        _print_result(result)


def _check_flags(recipe_file: str | None, zoo_name: str | None, batch_size: int | None, mini_batch_size: int | None,
                 save_steps: int | None, hard_negatives: int | None, mine_negatives: int | None,
                 mining_in_budget: bool, out: str | None, repo_id: str | None, **levers: object) -> dict[str, object]:
    """The flags checked on their own (no model, data or torch); returns the levers for ``build_recipe``."""
    from st_recipe.planning.builder import check_levers

    if recipe_file is not None and zoo_name is not None:
        raise StRecipeError("give --recipe or --zoo, not both")
    check_batch_size(batch_size)
    check_min(mini_batch_size, "--mini-batch-size", 1)
    check_min(save_steps, "--save-steps", 1)
    negatives = _check_negative_flags(hard_negatives, mine_negatives)
    if mining_in_budget and not mine_negatives:
        raise StRecipeError("--mining-in-budget charges mining to the budget: it needs --mine-negatives K")
    levers = {**levers, "hard_negatives": negatives}
    check_levers(**levers)
    if out is not None:
        from st_recipe.run import RunDir

        RunDir.at(out)  # an empty name fails here with the other flags, before model and data are read
    if repo_id is not None:
        from st_recipe.publishing import validate_repo_id

        validate_repo_id(repo_id)
    if zoo_name is not None:
        from st_recipe.zoo import get_entry

        get_entry(zoo_name)
    return levers


def _check_inputs(recipe, out: str | None, data: str, *, model_given: bool, overwrite: bool, resume: bool,
                  anchor_column: str | None, positive_column: str | None, mine_negatives: int | None,
                  quiet: bool) -> tuple[str, object]:
    """The library's checks before torch (:func:`~st_recipe.training.precheck.check_train_inputs`), then one line."""
    from st_recipe.planning.builder import lever_summary
    from st_recipe.training.precheck import check_train_inputs

    target, pairs = check_train_inputs(recipe, data, out, overwrite=overwrite, resume=resume,
                                       anchor_column=anchor_column, positive_column=positive_column,
                                       mine_negatives=bool(mine_negatives), model_checked=model_given)
    if not quiet:
        click.echo(f"model {display(recipe.model)}; method {recipe.method} {json.dumps(recipe.method_args)}; "
                   f"budget {recipe.budget:.4g} FLOP; batch {recipe.batch_size}; data {data}; out {target}"
                   f"{lever_summary(recipe)}", err=True)
    return target, pairs


def _print_result(result) -> None:
    """The finished run in three lines: where and how long, FLOPs spent, held-out scores before -> after."""
    rec = result.record
    f = rec.flops
    click.echo(f"wrote {result.out}  ({rec.steps} steps, {rec.pairs_seen:,} pairs, {rec.tokens_seen:,} tokens, "
               f"{rec.wall_time_s:.0f} s)")
    click.echo(f"FLOPs spent {f.spent:.4g} of {f.budget:.4g} ({f.spent_fraction:.2%}); "
               f"paper formula {f.paper_formula:.4g}; executed incl. padding {f.executed_with_padding:.4g}")
    b, a = rec.heldout.before, rec.heldout.after
    if b and a:
        click.echo(f"held-out ({a.pairs} pairs): InfoNCE {b.infonce:.3f} -> {a.infonce:.3f}, "
                   f"top-1 accuracy {b.top1_accuracy:.1%} -> {a.top1_accuracy:.1%}")


def distributed_command(kind: str, recipe, *, gpus: int | None, nodes: int, bf16: bool) -> str:
    """The exact ``accelerate launch`` command for this invocation (its arguments less --distributed/--gpus/--nodes)."""
    from st_recipe.launch import launch_command, strip_option

    check_min(gpus, "--gpus", 1)
    check_min(nodes, "--nodes", 1)
    from st_recipe.launch import CONFIG_PROCESSES
    from st_recipe.planning.planner import check_batch_divides

    check_batch_divides(recipe.batch_size, (gpus or CONFIG_PROCESSES) * nodes, "processes")
    argv = list(sys.argv[1:])
    if argv and argv[0] == "train":
        argv = argv[1:]
    for name in ("--distributed", "--gpus", "--nodes"):
        argv = strip_option(argv, name)
    return launch_command(kind, argv, model=recipe.model, processes=gpus, machines=nodes,
                          bf16=bf16 or recipe.precision == "bf16")


def _check_negative_flags(hard: int | None, mine: int | None) -> int | None:
    """The hard-negative count asked for (``--hard-negatives`` or ``--mine-negatives``), or None."""
    from st_recipe.data.pairs import check_negative_count

    if hard is not None and mine is not None:
        raise StRecipeError("give --hard-negatives K (negatives from the data) or --mine-negatives K, not both")
    if mine is not None and (isinstance(mine, bool) or mine < 1):
        raise StRecipeError(f"--mine-negatives must be an integer >= 1, not {mine}")
    value = mine if mine is not None else hard
    return None if value is None else check_negative_count(value)


def interrupted_hint(target: str) -> str:
    """What to do after Ctrl-C, depending on whether a checkpoint was saved."""
    from st_recipe.run import RunDir

    ckpt = RunDir.at(target).checkpoints
    if any(ckpt.glob("checkpoint-*")):
        return (f"interrupted; run the same command with --resume to continue from the last checkpoint "
                f"in {ckpt}")
    if ckpt.exists():
        return ("interrupted before the first checkpoint; run the same command with --overwrite to start "
                "again (or --save-steps N to checkpoint sooner)")
    return "interrupted before training started; nothing was written"


# ----------------------------------------------------------------------------------------------------
# Checks that run before any heavy import (torch, transformers), so bad input fails in well under a second


