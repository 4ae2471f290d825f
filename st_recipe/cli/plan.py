"""``st-recipe plan``: a budget in, a recipe with provenance out (torch-free)."""

from __future__ import annotations

import json
from typing import Any

import click

from st_recipe.cli._common import check_batch_size, format_table


@click.command("plan")
@click.option("--budget", required=True, help="Training compute in FLOPs, e.g. 1e17.")
@click.option("--max-memory", default=None, help="Peak training memory cap per device, e.g. 24GB (GB = GiB = 2^30 bytes).")
@click.option("--gpus", type=int, default=1, show_default=True,
              help="Devices per node. Above one device the memory check assumes FSDP full shard / ZeRO-3 over all of them.")
@click.option("--nodes", type=int, default=1, show_default=True, help="Machines, each with --gpus devices.")
@click.option("--method", default=None, help="Use this method; the rest is re-planned.")
@click.option("--method-arg", "method_args", multiple=True, metavar="KEY=VALUE", help="Method argument (repeatable).")
@click.option("--model", default=None, help="Use this base model (catalogue name or random:<name>).")
@click.option("--batch-size", type=int, default=None, help="Pairs per batch (default: the paper's 1024).")
@click.option("--bf16", is_flag=True, help="Plan for bf16 mixed precision (smaller activations).")
@click.option("--fitted", default=None, help="A fitted-law YAML from `st-recipe fit` (replaces the heuristics).")
@click.option("--hard-negatives", type=int, default=0, show_default=True,
              help="Plan for K hard negatives per pair (each one more passage to encode: fewer pairs per FLOP).")
@click.option("--json", "as_json", is_flag=True, help="Print the Recipe as JSON.")
@click.option("--force", is_flag=True, help="Plan a budget above the 1e26 FLOP ceiling.")
def plan_cmd(budget: str, max_memory: str | None, method: str | None, method_args: tuple[str, ...],
             model: str | None, batch_size: int | None, bf16: bool, fitted: str | None, as_json: bool,
             gpus: int = 1, nodes: int = 1, hard_negatives: int = 0, force: bool = False) -> None:
    """Plan a run for a FLOP budget: model, method, pairs and hyperparameters, each with its provenance."""
    from st_recipe.costing.flops import check_budget
    from st_recipe.data.pairs import check_negative_count
    from st_recipe.methods import parse_method_args
    from st_recipe.planning.planner import check_budget_ceiling, check_devices, plan

    check_batch_size(batch_size)
    check_budget_ceiling(check_budget(budget), force)
    check_devices(gpus, nodes)
    check_negative_count(hard_negatives)
    law = None
    if fitted is not None:
        from st_recipe.planning.scaling import FittedLaw

        law = FittedLaw.load(fitted)
    recipe = plan(check_budget(budget), max_memory=max_memory, method=method, model=model,
                  method_args=parse_method_args(method_args) or None, precision="bf16" if bf16 else "fp32",
                  batch_size=batch_size, fitted=law, gpus=gpus, nodes=nodes, hard_negatives=hard_negatives)
    if as_json:
        click.echo(recipe.to_json())
        return
    click.echo(render_recipe(recipe))


def render_recipe(recipe: Any) -> str:
    """The readable plan: field table with provenance, data amount, per-method costs on the chosen model."""
    from st_recipe.costing.flops import format_flops
    from st_recipe.costing.pricing import recipe_cost
    from st_recipe.methods import get_method_class
    from st_recipe.planning.planner import method_costs

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


