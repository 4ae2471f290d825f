"""``st-recipe models``, ``methods`` and ``recipes``: what is available, and what it costs."""

from __future__ import annotations

import json

import click

from st_recipe.cli._common import args_text, check_model, display, format_table, quiet_libraries
from st_recipe.errors import StRecipeError


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def models_cmd(as_json: bool) -> None:
    """List the built-in base-model catalogue (no Hub access)."""
    from st_recipe.models.catalog import CATALOG

    if as_json:
        click.echo(json.dumps({k: v.to_dict() for k, v in CATALOG.items()}, indent=2))
        return
    rows = [("name", "hub id", "layers", "hidden", "heads", "N (non-emb)", "pretrain LR", "fine-tune LR")]
    for s in CATALOG.values():
        rows.append((s.name, s.hub_id, str(s.num_layers), str(s.hidden_size), str(s.num_heads),
                     f"{s.n_params:,}", f"{s.pretrain_lr:g}", f"{s.finetune_lr:g}"))
    click.echo(format_table(rows))


@click.command("methods")
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
        from st_recipe.models.args import parse_model_spec

        if parse_model_spec(model).spec is None:  # catalogue shapes need no Hub: their configs are known
            check_model(model)
        click.echo(f"model: {display(model)}", err=True)
        quiet_libraries()
    from st_recipe.costing.pricing import compare_methods

    records = compare_methods(model, [methods[name] for name in names])
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if model is None:
        rows = [("method", "cost/token", "arguments (defaults)", "what trains")]
        rows += [(r["method"], r["cost"], args_text(r["args"]), r["summary"]) for r in records]
        click.echo(format_table(rows))
        return
    rows = [("method", "trainable N_t", "total N", "N_t/N", "trainable (all)", "total (all)", "cost/token", "FLOP/token")]
    for r in records:
        if "unavailable" in r:
            rows.append((r["method"], "-", "-", "-", "-", "-", r["cost"], "-"))
            continue
        rows.append((r["method"], f"{r['n_trainable']:,}", f"{r['n_params']:,}", f"{r['trainable_fraction']:.2%}",
                     f"{r['n_trainable_all']:,}", f"{r['n_params_all']:,}", r["cost"], f"{r['flops_per_token']:.4g}"))
    click.echo(format_table(rows))
    click.echo("N, N_t exclude embedding parameters (the paper's convention); '(all)' columns include them.")
    for r in records:
        if "unavailable" in r:
            click.echo(f"not applicable to this model: {r['unavailable']}")


@click.group("recipes")
def recipes_group() -> None:
    """The recipe registry (recipes/*.yaml)."""


@recipes_group.command("list")
def recipes_list() -> None:
    """List named recipes: budget, model, method, pairs."""
    from st_recipe.costing.flops import format_flops
    from st_recipe.planning.recipes import list_recipes

    rows = [("name", "budget", "model", "method", "pairs", "file")]
    for name, (path, r) in list_recipes().items():
        rows.append((name, format_flops(r.budget) if r.budget else "-", r.model, r.method, f"{r.pairs:,}", path.name))
    click.echo(format_table(rows))


@recipes_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the Recipe as JSON.")
def recipes_show(name: str, as_json: bool) -> None:
    """Show one recipe (a registry name or a YAML/JSON file) with provenance."""
    from st_recipe.cli.plan import render_recipe
    from st_recipe.planning.recipes import get_recipe

    recipe = get_recipe(name)
    click.echo(recipe.to_json() if as_json else render_recipe(recipe))


