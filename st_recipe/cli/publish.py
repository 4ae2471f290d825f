"""``st-recipe publish``: push a finished run dir to the Hugging Face Hub with its model card."""

from __future__ import annotations

import click


@click.command("publish")
@click.argument("run_dir")
@click.option("--repo", "repo_id", default=None, metavar="ORG/NAME",
              help="Hub repo to create or update (default: the --repo-id the run was trained with).")
@click.option("--private", is_flag=True, help="Create the repo as private (an existing public repo is refused).")
@click.option("--dry-run", "dry_run", default=None, metavar="DIR",
              help="Write exactly the folder that would be uploaded to DIR and upload nothing (no token needed). "
                   "DIR must be new or empty, or an earlier dry run of the same run with --overwrite.")
@click.option("--overwrite", is_flag=True,
              help="With --dry-run: replace DIR when it holds an earlier dry run of this same run.")
@click.option("--no-scores", is_flag=True,
              help="Publish even though the run has no MTEB scores (no eval summary, or no task in it succeeded).")
@click.option("--results", default=None, metavar="FILE",
              help="Eval summary JSON from `st-recipe eval` (default: RUN_DIR/eval_results.json when present).")
@click.option("--frontier", default=None, metavar="FILE",
              help="Fitted-law YAML from `st-recipe fit`: the card shows where this model sits on the frontier.")
@click.option("--revision", default=None, metavar="BRANCH", help="Existing branch to commit to (default main).")
@click.option("--allow-random", is_flag=True, help="Allow publishing a model trained from random weights (the card warns).")
@click.option("--commit-message", default=None, help="Commit title (default names the method and budget).")
def publish_cmd(run_dir: str, repo_id: str | None, private: bool, dry_run: str | None, overwrite: bool, no_scores: bool,
                results: str | None, frontier: str | None, revision: str | None, allow_random: bool,
                commit_message: str | None) -> None:
    """Publish RUN_DIR: model, card (recipe, FLOPs, loss plot, MTEB model-index) and mteb metadata, in one commit.

    The token comes from HF_TOKEN or `hf auth login`; there is deliberately no --token option, since a
    command line ends up in shell history and process listings.
    """
    import logging

    from st_recipe.outputs import check_can_create, check_folder

    if dry_run is not None and dry_run.strip():
        # Before the run is read and the card is built; it is staged beside DIR, then renamed into place.
        check_folder(dry_run, "the dry-run folder")
        check_can_create(dry_run, "the dry-run folder")
    from st_recipe.publishing import publish

    # The client's retry notices and progress bars would bury the one line that matters on failure.
    logging.getLogger("huggingface_hub").setLevel(logging.CRITICAL)
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass
    result = publish(run_dir, repo_id, private=private, dry_run=dry_run, results=results, revision=revision,
                     allow_random=allow_random, commit_message=commit_message, frontier=frontier,
                     overwrite=overwrite, no_scores=no_scores)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(str(result))
