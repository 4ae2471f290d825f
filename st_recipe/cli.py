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


def _display(model: str) -> str:
    from st_recipe.catalog import parse_model_spec

    return parse_model_spec(model).display


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned plain-text table; the first row is the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    main()
