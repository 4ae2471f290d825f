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
    """A click group that turns StRecipeError into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; bad input becomes a one-line error, never a traceback."""
        try:
            return super().invoke(ctx)
        except StRecipeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


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
    from st_recipe.methods import get_method, get_method_class, list_methods, parse_method_args

    per_method: dict[str, list[str]] = {}
    for item in method_args:
        name, dot, rest = item.partition(".")
        if not dot:
            raise StRecipeError(f"--method-arg {item!r} must look like METHOD.KEY=VALUE")
        per_method.setdefault(name, []).append(rest)
    names = list_methods()
    for name in per_method:
        get_method_class(name)  # unknown method names fail here, with a suggestion
    records = []
    base = None
    if model is not None:
        from st_recipe.encoder import build_encoder

        click.echo(f"model: {_display(model)}", err=True)
        base = build_encoder(model)
    for name in names:
        cls = get_method_class(name)
        method = get_method(name, **parse_method_args(per_method.get(name, [])))
        record: dict[str, Any] = {"method": name, "args": method.args(), "cost": cls.cost_formula, "summary": cls.summary}
        if base is not None:
            import copy

            report = method.apply(copy.deepcopy(base))
            record.update(report.to_dict())
            record["flops_per_token"] = method.flops_per_token(report.n_params, report.n_trainable)
        records.append(record)
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if model is None:
        click.echo(format_table([("method", "cost/token", "what trains")] + [(r["method"], r["cost"], r["summary"]) for r in records]))
        return
    rows = [("method", "trainable N_t", "total N", "N_t/N", "trainable (all)", "total (all)", "cost/token", "FLOP/token")]
    for r in records:
        rows.append((r["method"], f"{r['n_trainable']:,}", f"{r['n_params']:,}", f"{r['trainable_fraction']:.2%}",
                     f"{r['n_trainable_all']:,}", f"{r['n_params_all']:,}", r["cost"], f"{r['flops_per_token']:.4g}"))
    click.echo(format_table(rows))
    click.echo("N, N_t exclude embedding parameters (the paper's convention); '(all)' columns include them.")


@main.command("plan")
@click.option("--budget", required=True, help="Training compute in FLOPs, e.g. 1e17.")
@click.option("--max-memory", default=None, help="Peak training memory cap, e.g. 24GB (GB = GiB = 2^30 bytes).")
@click.option("--method", default=None, help="Use this method; the rest is re-planned.")
@click.option("--method-arg", "method_args", multiple=True, metavar="KEY=VALUE", help="Method argument (repeatable).")
@click.option("--model", default=None, help="Use this base model (catalogue name or random:<name>).")
@click.option("--batch-size", type=int, default=None, help="Pairs per batch (default: the paper's 1024).")
@click.option("--bf16", is_flag=True, help="Plan for bf16 mixed precision (smaller activations).")
@click.option("--json", "as_json", is_flag=True, help="Print the Recipe as JSON.")
def plan_cmd(budget: str, max_memory: str | None, method: str | None, method_args: tuple[str, ...],
             model: str | None, batch_size: int | None, bf16: bool, as_json: bool) -> None:
    """Plan a run for a FLOP budget: model, method, pairs and hyperparameters, each with its provenance."""
    from st_recipe.flops import check_budget
    from st_recipe.methods import parse_method_args
    from st_recipe.planner import plan

    if batch_size is not None and batch_size < 2:
        raise StRecipeError(f"--batch-size must be at least 2, not {batch_size}")
    recipe = plan(check_budget(budget), max_memory=max_memory, method=method, model=model,
                  method_args=parse_method_args(method_args) or None, precision="bf16" if bf16 else "fp32",
                  batch_size=batch_size)
    if as_json:
        click.echo(recipe.to_json())
        return
    click.echo(render_recipe(recipe))


def render_recipe(recipe: Any) -> str:
    """The readable plan: field table with provenance, data amount, per-method costs on the chosen model."""
    from st_recipe.catalog import parse_model_spec
    from st_recipe.flops import format_flops
    from st_recipe.methods import get_method
    from st_recipe.planner import method_costs

    rows = [("field", "value", "provenance")]
    for name in recipe.field_names():
        value = getattr(recipe, name)
        shown = json.dumps(value) if isinstance(value, dict) else (format_flops(value) if name == "budget" and value else str(value))
        prov = recipe.provenance[name]
        rows.append((name, shown, prov.source + (f": {prov.note}" if prov.note else "")))
    out = [format_table(rows, wrap_last=70), ""]
    spec = parse_model_spec(recipe.model).spec
    method = get_method(recipe.method, **recipe.method_args)
    counts = method.predict_params(spec) if spec else None
    out.append(f"pairs {recipe.pairs:,} = tokens {recipe.tokens:,} at {recipe.tokens_per_pair:g} tokens/pair; "
               f"{recipe.steps:,} steps of {recipe.batch_size} pairs")
    if counts:
        n, nt = counts
        fpt = method.flops_per_token(n, nt)
        out.append(f"trainable parameters (non-embedding): {nt:,} of {n:,} ({nt / n:.2%}); "
                   f"cost {method.cost_formula} = {format_flops(fpt)} FLOP/token; "
                   f"planned {format_flops(fpt * recipe.tokens)} FLOP")
    if spec is not None:
        out += ["", f"cost per token of each method on {spec.name}:"]
        crow = [("method", "formula", "trainable N_t", "N", "FLOP/token")]
        for r in method_costs(spec, recipe):
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


if __name__ == "__main__":  # pragma: no cover
    main()
