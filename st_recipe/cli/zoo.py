"""``st-recipe zoo list|build``: the named model zoo."""

from __future__ import annotations

from pathlib import Path

import click

from st_recipe.errors import StRecipeError


@click.group("zoo")
def zoo_group() -> None:
    """The model zoo: named recipes pythia-{size}-{method}-embed and their train -> eval -> publish builds."""


@zoo_group.command("list")
@click.option("--builds", default="runs/zoo", show_default=True, help="Where local builds live (to show their state).")
def zoo_list(builds: str) -> None:
    """Name, base model, method, budget, pairs, planned FLOPs and published repo of every zoo entry."""
    from st_recipe.cli._common import format_table
    from st_recipe.costing.flops import format_flops
    from st_recipe.costing.pricing import recipe_cost
    from st_recipe.methods import get_method
    from st_recipe.zoo import build_state, zoo_entries

    rows = [("name", "base", "method", "budget", "pairs", "planned FLOPs", "published", "local build")]
    for name, (r, published) in zoo_entries().items():
        method = get_method(r.method, **r.method_args)
        cost = recipe_cost(r)
        spec = cost.shape if cost else None
        planned = cost.planned_flops if cost else None
        state = build_state(builds, name)
        stage = "published" if state.get("published") else "evaluated" if state.get("evaluated") else \
            "trained" if state.get("trained") else "-"
        rows.append((name, getattr(spec, "hub_id", None) or r.model, method.describe(), format_flops(r.budget or 0),
                     f"{r.pairs:,}", format_flops(planned) if planned else "-", published or state.get("published") or "-",
                     stage))
    click.echo(format_table(rows))


@zoo_group.command("build")
@click.argument("name")
@click.option("--org", required=True, help="Hub organisation or user to publish under (ORG/NAME).")
@click.option("--data", default="builtin", show_default=True, help="Training pairs (as for train).")
@click.option("--builds", default="runs/zoo", show_default=True, help="Where builds live (resumable per stage).")
@click.option("--task-file", "task_files", multiple=True, help="Evaluate on local task files instead of paper-15.")
@click.option("--benchmark", "benchmarks", multiple=True, help="Evaluate on these benchmarks (default paper-15).")
@click.option("--model", default=None, help="Override the base model (e.g. random:pythia-14m for a rehearsal).")
@click.option("--budget", default=None, help="Override the budget (FLOPs).")
@click.option("--batch-size", type=int, default=None, help="Override the batch size.")
@click.option("--dry-run", default=None, help="Write the folder that would be uploaded here; upload nothing.")
@click.option("--private", is_flag=True, help="Create the repo private.")
@click.option("--allow-random", is_flag=True, help="Allow publishing a random-init rehearsal model.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def zoo_build(name: str, org: str, data: str, builds: str, task_files: tuple[str, ...], benchmarks: tuple[str, ...],
              model: str | None, budget: str | None, batch_size: int | None, dry_run: str | None, private: bool,
              allow_random: bool, quiet: bool) -> None:
    """train -> eval (paper-15, or task files) -> publish one zoo entry; re-running resumes at the unfinished stage."""
    from st_recipe.cli._common import (
        check_batch_size,
        check_model,
        quiet_libraries,
    )
    from st_recipe.costing.flops import check_budget
    from st_recipe.data.sources import check_source
    from st_recipe.outputs import check_folder
    from st_recipe.publishing import validate_repo_id
    from st_recipe.zoo import build, build_state, get_entry

    # Unknown names, bad overrides and missing inputs fail here, before anything heavy is imported.
    recipe = get_entry(name)
    validate_repo_id(f"{org}/{name}")
    budget_value = check_budget(budget) if budget is not None else None
    check_batch_size(batch_size)
    if budget_value is not None or model is not None or batch_size is not None:
        from st_recipe.planning.builder import build_recipe

        recipe = build_recipe(recipe=name, budget=budget_value, model=model, batch_size=batch_size)
    check_folder(builds, "--builds")
    if dry_run is not None:
        check_folder(dry_run, "--dry-run")
    state = build_state(builds, name)
    if state and state.get("recipe") != recipe.to_dict():
        raise StRecipeError(f"{str(Path(builds) / name)!r} holds a build of a different recipe; remove it or use --builds")
    if not state.get("trained"):
        check_model(recipe.model)
        check_source(data, load=False)
    if not state.get("evaluated"):
        from st_recipe.evaluation import parse_task_file

        for spec in task_files:
            parse_task_file(spec)
    if dry_run is None and not state.get("published"):
        from st_recipe.hub import access as hub_access

        hub_access.require_hub(f"publishing {org}/{name}", "pass --dry-run DIR to build and write the upload folder "
                               "without uploading")
    quiet_libraries()
    state = build(name, org, data=data, builds=builds, task_files=task_files, benchmarks=benchmarks, model=model,
                  budget=budget_value, batch_size=batch_size, dry_run=dry_run,
                  private=private, allow_random=allow_random, quiet=quiet)
    done = [s for s in ("trained", "evaluated", "published") if state.get(s)]
    click.echo(f"{name}: {', '.join(done) or 'nothing done'}" + (f"; dry run in {dry_run}" if dry_run else ""))
