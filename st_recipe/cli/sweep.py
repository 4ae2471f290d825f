"""``st-recipe sweep`` and ``st-recipe fit``: the paper's algorithm on the user's own models and data."""

from __future__ import annotations

import json

import click

from st_recipe.cli._lists import floats as _floats
from st_recipe.cli._lists import ints as _ints
from st_recipe.cli._lists import names as _names
from st_recipe.cli._sweep_jobs import finish_sweep, sweep_extras, sweep_job_options


@click.command("sweep")
@sweep_job_options
@click.option("--budgets", default=None, help="Comma-separated FLOP budgets, e.g. 1e15,4e15,1.6e16.")
@click.option("--models", default=None, help="Comma-separated base models (catalogue names, random:<name>, folders).")
@click.option("--methods", default=None, help="Comma-separated methods, e.g. full,lora,freeze,bias.")
@click.option("--ranks", default=None, help="LoRA ranks to try (comma-separated integers; default 32).")
@click.option("--fractions", default=None, help="Block-freezing trainable fractions to try (default 0.5).")
@click.option("--data", default="builtin", show_default=True, help="Training pairs (as for train).")
@click.option("--out", required=True, help="Sweep dir (resumable: finished cells are skipped).")
@click.option("--batch-size", type=int, default=None, help="Pairs per batch for every cell (default 1024).")
@click.option("--max-seq-length", type=int, default=None, help="Truncate texts to this many tokens.")
@click.option("--lr", "learning_rate", type=float, default=None, help="Override every cell's learning rate.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep_cmd(budgets: str, models: str, methods: str, ranks: str | None, fractions: str | None, data: str, out: str,
              batch_size: int | None, max_seq_length: int | None, learning_rate: float | None, quiet: bool) -> None:
    """Run a grid of budgets × models × methods through train (here, or each cell as a local or SLURM job), for `fit`."""
    from st_recipe.cli._common import (
        check_batch_size,
        check_model,
        quiet_libraries,
    )
    from st_recipe.data.sources import check_source
    from st_recipe.outputs import check_can_create, check_folder
    from st_recipe.planning.planner import check_budget_ceiling
    from st_recipe.sweeps.grid import prepare_sweep, sweep

    budget_list = _floats(budgets, "--budgets")
    for b in budget_list:
        check_budget_ceiling(b, can_force=False)
    model_list = _names(models, "--models")
    method_list = _names(methods, "--methods")
    rank_list = _ints(ranks, "--ranks") if ranks is not None else None
    frac_list = _floats(fractions, "--fractions") if fractions is not None else None
    check_batch_size(batch_size)
    check_folder(out, "--out")
    # The whole grid (every cell's recipe, the sweep dir's saved grid) is checked before torch is imported.
    prepare_sweep(budget_list, model_list, method_list, out=out, data=data, ranks=rank_list, fractions=frac_list,
                  batch_size=batch_size, max_seq_length=max_seq_length, learning_rate=learning_rate)
    for model in model_list:
        check_model(model, instead="list DIR in --models")
    check_source(data, load=False)
    check_can_create(out, "--out")
    quiet_libraries()
    finish_sweep(lambda: sweep(budget_list, model_list, method_list, out=out, data=data, ranks=rank_list,
                               fractions=frac_list, batch_size=batch_size, max_seq_length=max_seq_length,
                               learning_rate=learning_rate, quiet=quiet, **sweep_extras()), out)


@click.command("fit")
@click.argument("sweep_dir")
@click.option("--out", "out_file", default=None, help="Fitted-law YAML to write (default SWEEP_DIR/fitted.yaml).")
@click.option("--plot", "plot_file", default=None, help="Frontier plot PNG (default SWEEP_DIR/frontier.png).")
@click.option("--metric", type=click.Choice(["heldout_loss", "train_loss"]), default="heldout_loss", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the fit as JSON.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out or --plot file (the defaults are always refreshed).")
def fit_cmd(sweep_dir: str, out_file: str | None, plot_file: str | None, metric: str, as_json: bool,
            overwrite: bool = False) -> None:
    """Fit per-method loss-vs-budget laws, the frontier and crossovers; write a recipes YAML for plan --fitted."""
    from st_recipe.cli._common import format_table
    from st_recipe.sweeps.grid import fit

    result = fit(sweep_dir, out=out_file, plot=plot_file, metric=metric, overwrite=overwrite)
    law, points, out_path, plot_path = result.law, result.points, result.law_path, result.plot_path
    doc = {"fitted": law.to_dict()}
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    rows = [("method", "points", "slope", "intercept", "R²", "max |residual|", "size trend slope")]
    for m, f in sorted(law.methods.items()):
        size = law.model_size.get(m)
        rows.append((m, str(len(f.points)), f"{f.slope:.4f}", f"{f.intercept:.4f}", f"{f.r2:.3f}",
                     f"{max(abs(r) for r in f.residuals):.4f}", f"{size.slope:.3f}" if size else "-"))
    click.echo(format_table(rows))
    crosses = law.crossovers()
    if crosses:
        for c in crosses:
            click.echo(f"crossover at {c['budget']:.3g} FLOP: {c['below']} below, {c['above']} above")
    else:
        budgets = sorted({p.budget for p in points})
        click.echo(f"no crossover in range: {law.method_for(budgets[0])} is optimal throughout")
    click.echo(f"wrote {out_path} and {plot_path}; use: st-recipe plan --budget B --fitted {out_path}")


