"""The ``st-recipe`` command line: a thin click shell over the Python API.

Heavy libraries are imported inside the commands that need them, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from st_recipe import __version__
from st_recipe.errors import StRecipeError


class Group(click.Group):
    """A click group that turns StRecipeError and click's usage errors into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; bad input becomes a one-line error, never a traceback."""
        try:
            return super().invoke(ctx)
        except StRecipeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """As click's, but a usage error (bad option value, missing option) is one ``error:`` line, not a usage block."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS_IS_HELP as exc:
            exc.show()  # a bare group asks for its help: show it, as click does
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            click.echo(f"error: {_one_line(exc.format_message())}{where}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"error: {_one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        # Non-standalone click returns the command's value, or the exit code of --help/--version.
        sys.exit(rv if isinstance(rv, int) else 0)


_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="st-recipe")
def main() -> None:
    """Compute-optimal recipes for turning decoder LMs (Pythia first) into sentence-transformers embedders."""
    import warnings

    # Deprecation chatter from the stack is noise for CLI users; library users still see it.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


@main.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def models_cmd(as_json: bool) -> None:
    """List the built-in base-model catalogue (no Hub access)."""
    from st_recipe.catalog import CATALOG

    if as_json:
        click.echo(json.dumps({k: v.to_dict() for k, v in CATALOG.items()}, indent=2))
        return
    rows = [("name", "hub id", "layers", "hidden", "heads", "N (non-emb)", "pretrain LR", "fine-tune LR")]
    for s in CATALOG.values():
        rows.append((s.name, s.hub_id, str(s.num_layers), str(s.hidden_size), str(s.num_heads),
                     f"{s.n_params:,}", f"{s.pretrain_lr:g}", f"{s.finetune_lr:g}"))
    click.echo(format_table(rows))


@main.command("methods")
@click.option("--model", "model", default=None, help="Apply each method to this model and count parameters "
              "(catalogue name, Hub id, local folder or random:<name>).")
@click.option("--method-arg", "method_args", multiple=True, metavar="METHOD.KEY=VALUE",
              help="An argument for one method, e.g. lora.r=64 or freeze.fraction=0.25 (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def methods_cmd(model: str | None, method_args: tuple[str, ...], as_json: bool) -> None:
    """List the fine-tuning methods; with --model, their trainable/total parameters and cost per token."""
    from st_recipe.methods import get_method, list_methods, parse_method_args

    per_method: dict[str, list[str]] = {}
    for item in method_args:
        name, dot, rest = item.partition(".")
        if not dot or not name:
            raise StRecipeError(f"--method-arg {item!r} must look like METHOD.KEY=VALUE")
        per_method.setdefault(name, []).append(rest)
    names = list_methods()
    methods = {}
    for name, pairs in per_method.items():
        methods[name] = get_method(name, **parse_method_args(pairs))  # bad names/args fail here
    for name in names:
        # Every method's defaults are cheap to build (none imports torch or peft), so listing stays instant.
        methods.setdefault(name, get_method(name))
    if model is not None:
        from st_recipe.catalog import parse_model_spec

        if parse_model_spec(model).spec is None:  # catalogue shapes need no Hub: their configs are known
            _check_model(model)
        click.echo(f"model: {_display(model)}", err=True)
        _quiet_libraries()
    from st_recipe.pricing import compare_methods

    records = compare_methods(model, [methods[name] for name in names])
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if model is None:
        rows = [("method", "cost/token", "arguments (defaults)", "what trains")]
        rows += [(r["method"], r["cost"], _args_text(r["args"]), r["summary"]) for r in records]
        click.echo(format_table(rows))
        return
    rows = [("method", "trainable N_t", "total N", "N_t/N", "trainable (all)", "total (all)", "cost/token", "FLOP/token")]
    for r in records:
        rows.append((r["method"], f"{r['n_trainable']:,}", f"{r['n_params']:,}", f"{r['trainable_fraction']:.2%}",
                     f"{r['n_trainable_all']:,}", f"{r['n_params_all']:,}", r["cost"], f"{r['flops_per_token']:.4g}"))
    click.echo(format_table(rows))
    click.echo("N, N_t exclude embedding parameters (the paper's convention); '(all)' columns include them.")


def _args_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items()) or "-"


@main.command("plan")
@click.option("--budget", required=True, help="Training compute in FLOPs, e.g. 1e17.")
@click.option("--max-memory", default=None, help="Peak training memory cap, e.g. 24GB (GB = GiB = 2^30 bytes).")
@click.option("--method", default=None, help="Use this method; the rest is re-planned.")
@click.option("--method-arg", "method_args", multiple=True, metavar="KEY=VALUE", help="Method argument (repeatable).")
@click.option("--model", default=None, help="Use this base model (catalogue name or random:<name>).")
@click.option("--batch-size", type=int, default=None, help="Pairs per batch (default: the paper's 1024).")
@click.option("--bf16", is_flag=True, help="Plan for bf16 mixed precision (smaller activations).")
@click.option("--fitted", default=None, help="A fitted-law YAML from `st-recipe fit` (replaces the heuristics).")
@click.option("--json", "as_json", is_flag=True, help="Print the Recipe as JSON.")
def plan_cmd(budget: str, max_memory: str | None, method: str | None, method_args: tuple[str, ...],
             model: str | None, batch_size: int | None, bf16: bool, fitted: str | None, as_json: bool) -> None:
    """Plan a run for a FLOP budget: model, method, pairs and hyperparameters, each with its provenance."""
    from st_recipe.flops import check_budget
    from st_recipe.methods import parse_method_args
    from st_recipe.planner import plan

    _check_batch_size(batch_size)
    law = None
    if fitted is not None:
        from st_recipe.scaling import FittedLaw

        law = FittedLaw.load(fitted)
    recipe = plan(check_budget(budget), max_memory=max_memory, method=method, model=model,
                  method_args=parse_method_args(method_args) or None, precision="bf16" if bf16 else "fp32",
                  batch_size=batch_size, fitted=law)
    if as_json:
        click.echo(recipe.to_json())
        return
    click.echo(render_recipe(recipe))


def render_recipe(recipe: Any) -> str:
    """The readable plan: field table with provenance, data amount, per-method costs on the chosen model."""
    from st_recipe.flops import format_flops
    from st_recipe.methods import get_method_class
    from st_recipe.planner import method_costs
    from st_recipe.pricing import recipe_cost

    rows = [("field", "value", "provenance")]
    for name in recipe.field_names():
        value = getattr(recipe, name)
        shown = json.dumps(value) if isinstance(value, dict) else (format_flops(value) if name == "budget" and value else str(value))
        prov = recipe.provenance[name]
        rows.append((name, shown, prov.source + (f": {prov.note}" if prov.note else "")))
    out = [format_table(rows, wrap_last=70), ""]
    cost = recipe_cost(recipe)
    out.append(f"pairs {recipe.pairs:,} = tokens {recipe.tokens:,} at {recipe.tokens_per_pair:g} tokens/pair; "
               f"{recipe.steps:,} steps of {recipe.batch_size} pairs")
    if cost is not None:
        n, nt = cost.n_params, cost.n_trainable
        out.append(f"trainable parameters (non-embedding): {nt:,} of {n:,} ({nt / n:.2%}); "
                   f"cost {get_method_class(recipe.method).cost_formula} = {format_flops(cost.flops_per_token)} FLOP/token; "
                   f"planned {format_flops(cost.planned_flops)} FLOP")
        out += ["", f"cost per token of each method on {cost.shape.name}:"]
        crow = [("method", "formula", "trainable N_t", "N", "FLOP/token")]
        for r in method_costs(cost.shape, recipe):
            crow.append((r["method"], r["formula"], f"{r['n_trainable']:,}", f"{r['n_params']:,}", format_flops(r["flops_per_token"])))
        out.append(format_table(crow))
    return "\n".join(out)


@main.group("recipes")
def recipes_group() -> None:
    """The recipe registry (recipes/*.yaml)."""


@recipes_group.command("list")
def recipes_list() -> None:
    """List named recipes: budget, model, method, pairs."""
    from st_recipe.flops import format_flops
    from st_recipe.recipes import list_recipes

    rows = [("name", "budget", "model", "method", "pairs", "file")]
    for name, (path, r) in list_recipes().items():
        rows.append((name, format_flops(r.budget) if r.budget else "-", r.model, r.method, f"{r.pairs:,}", path.name))
    click.echo(format_table(rows))


@recipes_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the Recipe as JSON.")
def recipes_show(name: str, as_json: bool) -> None:
    """Show one recipe (a registry name or a YAML/JSON file) with provenance."""
    from st_recipe.recipes import get_recipe

    recipe = get_recipe(name)
    click.echo(recipe.to_json() if as_json else render_recipe(recipe))


@main.command("train")
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
    _check_batch_size(batch_size)
    _check_min(mini_batch_size, "--mini-batch-size", 1)
    _check_min(save_steps, "--save-steps", 1)
    if out is not None and not out.strip():
        raise StRecipeError("the output folder (--out) must not be empty")
    if repo_id is not None:
        from st_recipe.publishing import validate_repo_id

        validate_repo_id(repo_id)
    if zoo_name is not None:
        from st_recipe.zoo import get_entry

        get_entry(zoo_name)
    if model is not None:
        _check_model(model)
    recipe = build_recipe(budget=budget, recipe=recipe_file or zoo_name, model=model, method=method,
                          method_args=method_args, batch_size=batch_size, mini_batch_size=mini_batch_size,
                          learning_rate=learning_rate, max_seq_length=max_seq_length, bf16=bf16, seed=seed)
    from st_recipe.planner import budget_label

    target = out or f"runs/{_slug(recipe.model)}-{recipe.method}-{budget_label(recipe.budget or 0)}"
    _check_run_out(target, overwrite=overwrite, resume=resume)
    if model is None:
        _check_model(recipe.model)  # the planned or recipe's model
    pairs = _check_data(data, anchor_column=anchor_column, positive_column=positive_column, seed=recipe.seed)
    _check_writable(target, "--out")
    if not quiet:
        click.echo(f"model {_display(recipe.model)}; method {recipe.method} {json.dumps(recipe.method_args)}; "
                   f"budget {recipe.budget:.4g} FLOP; batch {recipe.batch_size}; data {data}; out {target}", err=True)
    try:
        _quiet_libraries()
        from st_recipe.training import train

        result = train(recipe, pairs, target, resume=resume, overwrite=overwrite,
                       gradient_checkpointing=gradient_checkpointing, save_steps=save_steps, quiet=quiet,
                       anchor_column=anchor_column, positive_column=positive_column, repo_id=repo_id)
    except KeyboardInterrupt:
        # Without --quiet the progress bar's line is still open; end it so the hint is a line of its own.
        click.echo(("" if quiet else "\n") + _interrupted_hint(target), err=True)
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


def _interrupted_hint(target: str) -> str:
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


def _check_min(value: int | None, flag: str, minimum: int, why: str = "") -> None:
    """Raise unless an optional integer option is at least ``minimum``."""
    if value is not None and value < minimum:
        raise StRecipeError(f"{flag} must be an integer >= {minimum}{why}, not {value}")


def _check_batch_size(value: int | None, flag: str = "--batch-size") -> None:
    """In-batch negatives need at least two pairs per batch."""
    _check_min(value, flag, 2, " (in-batch negatives need at least two pairs per batch)")


def _check_model(model: str, what: str = "model", instead: str = "pass --model DIR") -> Any:
    """Classify a base-model argument; a local folder must hold config.json, a Hub model must be reachable or cached."""
    import os

    from st_recipe import hub_access
    from st_recipe.catalog import parse_model_spec

    ref = parse_model_spec(model)
    if ref.kind == "local" and not os.path.isfile(os.path.join(ref.raw, "config.json")):
        raise StRecipeError(f"{what} folder {model!r} has no config.json, so it is not a Hugging Face model folder")
    if ref.kind == "hub":
        hub_access.require_model(ref.load_id, what=what, instead=instead)
    return ref


def _check_data(data: str, *, anchor_column: str | None = None, positive_column: str | None = None,
                seed: int = 0, load: bool = True) -> Any:
    """Check --data; a local file is read now (returned as pairs), 'builtin' and Hub ids are returned as given."""
    import os
    import re

    from st_recipe.data import BUILTIN, FILE_SUFFIXES, load_pairs

    text = (data or BUILTIN).strip()
    if text.lower() == BUILTIN and not (anchor_column or positive_column):
        return data
    path = os.path.expanduser(text)
    is_hub_id = (not os.path.exists(path) and os.path.splitext(text)[1].lower() not in FILE_SUFFIXES
                 and not text.startswith((".", "/", "~"))
                 and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*(:[^/]*)?", text) is not None)
    if is_hub_id:
        from st_recipe import hub_access

        hub_access.require_dataset(text.split(":", 1)[0])
        return data
    # Files (and anything that is neither a file nor a Hub id, which load_pairs rejects in one line).
    pairs = load_pairs(text, anchor_column=anchor_column, positive_column=positive_column, seed=seed)
    return pairs if load else data


def _check_run_out(target: str, *, overwrite: bool, resume: bool) -> None:
    """Training's own output refusals, made before torch is imported."""
    import os
    from pathlib import Path

    from st_recipe.training import check_out

    check_out(Path(os.path.abspath(os.path.expanduser(target))), overwrite=overwrite, resume=resume)
    _check_dir_target(target, "--out")


def _check_dir_target(target: str, flag: str) -> None:
    """A folder to be created or reused: not a file, and its nearest existing ancestor a folder."""
    import os
    from pathlib import Path

    if not target.strip():
        raise StRecipeError(f"{flag} must not be empty")
    path = Path(os.path.abspath(os.path.expanduser(target)))
    if path.exists() and not path.is_dir():
        raise StRecipeError(f"{flag} {target!r} is a file, not a folder")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise StRecipeError(f"{flag} {target!r} cannot be created: {str(ancestor)!r} is a file, not a folder")


def _check_writable(target: str, flag: str) -> None:
    """Create and remove a probe folder where ``target`` would be created (access() says yes to root on /proc)."""
    import os
    import tempfile
    from pathlib import Path

    path = Path(os.path.abspath(os.path.expanduser(target)))
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".st-recipe-probe-", dir=ancestor))
    except OSError as exc:
        raise StRecipeError(f"{flag} {target!r} cannot be written: {exc.strerror or exc} in {str(ancestor)!r}") from None


def _slug(model: str) -> str:
    import os
    import re

    name = model.removeprefix("random:")
    name = os.path.basename(os.path.normpath(name)) if os.sep in name else name.split("/")[-1]
    return ("random-" if model.startswith("random:") else "") + re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def _quiet_libraries(*loud: str) -> None:
    """Silence library chatter (progress bars, load reports) so a command's own lines stay readable.

    ``loud`` names further libraries to import and set to errors only: they reset their loggers when
    first imported, so quieting them before that import would not last.
    """
    import importlib
    import logging
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    for name in loud:
        try:
            module = importlib.import_module(name)
        except ImportError:  # pragma: no cover - the command itself reports a missing extra
            continue
        if hasattr(module, "disable_progress_bars"):
            module.disable_progress_bars()
        logging.getLogger(name).setLevel(logging.ERROR)


@main.command("eval")
@click.argument("model")
@click.option("--benchmark", "benchmarks", multiple=True, metavar="NAME",
              help="paper-15 (the paper's 15 tasks), an mteb benchmark such as 'MTEB(eng, v2)', or a task name "
                   "(repeatable; default paper-15 when nothing else is chosen).")
@click.option("--tasks", "tasks", multiple=True, metavar="T1,T2", help="mteb task names, comma-separated (repeatable).")
@click.option("--task-file", "task_files", multiple=True, metavar="[NAME=][sts:|retrieval:]PATH",
              help="A local task (repeatable): an STS jsonl (sentence1, sentence2, score; optional first-line header "
                   '{"score_range": [0, 5]}), a retrieval folder/spec (queries.jsonl, corpus.jsonl, qrels .jsonl/.tsv), '
                   "or builtin:sts / builtin:retrieval (offline tasks from the builtin pairs' held-out split).")
@click.option("--score-range", default=None, metavar="LOW,HIGH",
              help="Declared score range for STS task files (overrides a header); scores outside it are an error.")
@click.option("--batch-size", type=int, default=32, show_default=True,
              help="Encode batch size (halved automatically on out-of-memory).")
@click.option("--cache", "cache_dir", default=None, metavar="DIR",
              help="mteb result cache (default: <run dir>/mteb_results, else ~/.cache/st_recipe/mteb).")
@click.option("--compare-base", is_flag=True,
              help="Also evaluate the run's base model (st_recipe.json recipe.model, same pooling) and show the difference.")
@click.option("--overwrite", is_flag=True, help="Re-run tasks that already have cached results.")
@click.option("--model-name", default=None, metavar="ORG/NAME", help="File results under this name instead of the derived one.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary JSON instead of the table.")
def eval_cmd(model: str, benchmarks: tuple[str, ...], tasks: tuple[str, ...], task_files: tuple[str, ...],
             score_range: str | None, batch_size: int, cache_dir: str | None, compare_base: bool, overwrite: bool,
             model_name: str | None, as_json: bool) -> None:
    """Evaluate MODEL (a run dir, a sentence-transformers folder or a Hub id) with mteb; exit 1 if any task failed."""
    import warnings

    from st_recipe.evaluation import evaluate, parse_task_file

    span = None
    if score_range is not None:
        parts = score_range.replace(":", ",").split(",")
        try:
            span = (float(parts[0]), float(parts[1])) if len(parts) == 2 else None
        except ValueError:
            span = None
        if span is None:
            raise StRecipeError(f"--score-range must look like LOW,HIGH (e.g. 0,5), not {score_range!r}")
    # mteb and the model take tens of seconds to import and load: check what is cheap to check first.
    _check_min(batch_size, "--batch-size", 1)
    _check_eval_model(model, compare_base=compare_base)
    if cache_dir is not None:
        _check_dir_target(cache_dir, "--cache")
    for spec in task_files:
        parse_task_file(spec, span)
    # Superseded-task notices, retry logs and dataset map bars would drown the summary.
    warnings.filterwarnings("ignore", message=r".*is superseded by.*")
    _quiet_libraries("mteb", "datasets", "sentence_transformers", "huggingface_hub")
    summary = evaluate(model, benchmarks=benchmarks, tasks=tasks, task_files=task_files, batch_size=batch_size,
                       cache_dir=cache_dir, compare_base=compare_base, overwrite=overwrite, model_name=model_name,
                       progress=sys.stderr.isatty(), score_range=span)
    if as_json:
        click.echo(summary.to_json())
        base_failed = [dict(f, task=f"{f['task']} (base)") for f in summary.base.failed] if summary.base else []
        for item in summary.failed + base_failed:
            click.echo(f"failed: {item['task']}: {item['error']}", err=True)
    else:
        click.echo(summary.format())
    click.echo(f"summary saved to {summary.summary_path}", err=True)
    if not summary.ok:
        sys.exit(1)


def _check_eval_model(model: str, *, compare_base: bool = False) -> None:
    """The model argument of eval: an existing model folder, a catalogue name or a reachable (or cached) Hub id."""
    import os
    import re
    from pathlib import Path

    from st_recipe import hub_access
    from st_recipe.run import RUN_RECORD

    raw = model.strip()
    if not raw:
        raise StRecipeError("MODEL must not be empty: give a run dir, a model folder or a Hub id")
    folder = Path(os.path.expanduser(raw))
    if compare_base:
        if not (folder / RUN_RECORD).is_file():
            raise StRecipeError(f"--compare-base needs a run dir with {RUN_RECORD} (its recipe.model names the base model)")
        from st_recipe._files import read_json_object

        recipe = read_json_object(folder / RUN_RECORD).get("recipe")
        base = recipe.get("model") if isinstance(recipe, dict) else None
        if isinstance(base, str):
            # The base model loads after the run has been evaluated: a missing one should not cost that wait.
            _check_model(base, what="base model", instead="evaluate without --compare-base")
    if folder.is_dir():
        if not any((folder / name).is_file() for name in ("modules.json", "config.json", RUN_RECORD)):
            raise StRecipeError(f"{raw!r} is not a model folder (no modules.json, config.json or {RUN_RECORD})")
        return
    if folder.exists():
        raise StRecipeError(f"{raw!r} is a file, not a model folder")
    repo, at, revision = raw.partition("@")
    if re.fullmatch(r"[\w.\-]+/[\w.\-]+", repo) and not raw.startswith((".", "~")):
        hub_access.require_model(repo, revision=revision if at else None, instead="pass DIR as MODEL")
        return
    _check_model(raw, instead="pass DIR as MODEL")


def _display(model: str) -> str:
    from st_recipe.catalog import parse_model_spec

    return parse_model_spec(model).display


def format_table(rows: list[tuple[str, ...]], wrap_last: int | None = None) -> str:
    """Left-aligned plain-text table; the first row is the header; the last column may wrap."""
    import textwrap

    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if wrap_last:
        widths[-1] = min(widths[-1], wrap_last)
    lines = []
    for row in rows:
        last = textwrap.wrap(row[-1], wrap_last) if wrap_last and row[-1] else [row[-1]]
        head = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths))
        lines.append(f"{head}  {last[0]}".rstrip() if row[:-1] else last[0])
        pad = " " * (len(head) + 2)
        lines += [pad + extra for extra in last[1:]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _register_commands() -> None:
    # Commands in their own modules import only click at load time, so --help stays fast.
    from st_recipe.cli_publish import publish_cmd
    from st_recipe.cli_sweep import fit_cmd, sweep_cmd
    from st_recipe.cli_zoo import zoo_group

    for cmd in (publish_cmd, sweep_cmd, fit_cmd, zoo_group):
        main.add_command(cmd)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
