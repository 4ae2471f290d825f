"""The ``st-recipe`` command line: a thin click shell over the Python API (one module per command group).

Heavy libraries are imported inside the commands that need them, so ``--help`` and ``plan`` stay fast.
"""

from __future__ import annotations

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
        except OSError as exc:
            # The one place an unforeseen OS refusal (read-only, full, too long a name, ...) becomes one line.
            if isinstance(exc, BrokenPipeError):
                raise
            click.echo(f"error: {os_error_line(exc)}", err=True)
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


def os_error_line(exc: OSError) -> str:
    """``cannot use 'PATH': <reason>`` for an OSError (its errno text, not Python's repr)."""
    import errno

    if exc.errno == errno.ENOSPC:  # worded as the README says, with the file that did not fit
        where = f" ({exc.filename})" if exc.filename is not None else ""
        return f"no space left on device{where}"
    reason = exc.strerror or str(exc)
    return _one_line(f"cannot use {str(exc.filename)!r}: {reason}" if exc.filename is not None else reason)


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




def _register_commands() -> None:
    # Each command module imports only click and light helpers at load time, so --help stays fast.
    from st_recipe.cli.eval import eval_cmd
    from st_recipe.cli.info import methods_cmd, models_cmd, recipes_group
    from st_recipe.cli.mine import mine_cmd
    from st_recipe.cli.plan import plan_cmd
    from st_recipe.cli.publish import publish_cmd
    from st_recipe.cli.sweep import fit_cmd, sweep_cmd
    from st_recipe.cli.train import train_cmd
    from st_recipe.cli.zoo import zoo_group

    for cmd in (models_cmd, methods_cmd, plan_cmd, recipes_group, train_cmd, eval_cmd, publish_cmd, sweep_cmd,
                fit_cmd, zoo_group, mine_cmd):
        main.add_command(cmd)


_register_commands()
