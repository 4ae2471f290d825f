"""``publish``: check a finished run dir, stage exactly what goes up, and push it in one commit (or write it).

Every check that can refuse runs before anything is staged, created or contacted: the run and its files, the
repo id, random weights, the scores, the fitted law, the token. A run is published with its MTEB scores:
without an eval summary holding at least one scored task it is refused unless ``no_scores`` is given. Failed
tasks appear in the card as one short line each. ``dry_run`` writes exactly the staged folder (see
:mod:`st_recipe.publishing.staging` for which folders it may replace) and uploads nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_recipe.errors import StRecipeError
from st_recipe.publishing.card import fmt_flops, render_card
from st_recipe.publishing.facts import base_info, data_info, model_facts, model_meta
from st_recipe.publishing.plots import frontier as frontier_info
from st_recipe.publishing.plots import plot_loss
from st_recipe.publishing.privacy import (
    check_no_secret,
    public_record,
    public_summary,
    published_record,
    resolve_token,
    token_to_scan_for,
)
from st_recipe.publishing.push import preflight, push, validate_repo_id
from st_recipe.publishing.staging import (
    CARD_FILE,
    FRONTIER_PLOT,
    LOSS_PLOT,
    META_FILE,
    RESULTS_FILE,
    check_allowlist,
    check_dry_target,
    check_run_files,
    move_into_place,
    place,
    results_for,
    run_identity,
    staging_folder,
)
from st_recipe.run import RUN_RECORD, RunDir, RunRecord


@dataclass
class PublishResult:
    """What a publish did: the repo, the commit (None for a dry run) and the files it holds."""

    repo_id: str
    files: list[str]
    private: bool = False
    commit: str | None = None
    commit_url: str | None = None
    url: str | None = None
    dry_run: Path | None = None
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.dry_run is not None:
            return f"dry run: wrote {len(self.files)} files for {self.repo_id} to {self.dry_run}; nothing uploaded"
        where = " (private)" if self.private else ""
        return f"published {self.repo_id}{where} at commit {(self.commit or '?')[:12]}: {self.url}"


def dim_scores(run: Path, summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """Main scores per task at full size and at each ``eval --truncate-dim D`` the run dir holds (Matryoshka)."""
    by_dim: dict[int, dict[str, float]] = {}
    for path in sorted(run.glob("eval_results_dim*.json")):
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            by_dim[int(saved["truncate_dim"])] = {t["task"]: float(t["main_score"]) for t in saved["tasks"]}
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            continue  # not an eval summary: nothing to show from it
    if not by_dim:
        return None
    full = {t["task"]: float(t["main_score"]) for t in (summary or {}).get("tasks") or []}
    dims = sorted(by_dim, reverse=True)
    tasks = list(dict.fromkeys([*full, *(t for d in dims for t in by_dim[d])]))
    return {"dims": dims, "rows": [{"task": t, "full": full.get(t), "scores": [by_dim[d].get(t) for d in dims]}
                                   for t in tasks]}


def stage_upload(stage: Path, run: Path, files: list[str], rec: RunRecord, summary: dict[str, Any] | None,
                 repo_id: str, law: Any, identity: dict[str, str], *, link: bool) -> list[str]:
    """Fill ``stage`` with exactly what gets uploaded; returns its files."""
    for rel in files:
        place(run / rel, stage / rel, link=link)
    # Who the base and the data are is decided on the raw record, before paths are cut from it.
    base, data = base_info(rec), data_info(rec)
    facts = model_facts(run, files)
    loss_plot = LOSS_PLOT if plot_loss(list(rec.loss.per_step or []), stage / LOSS_PLOT, (rec.dev or {}).get("points")) else None
    frontier = frontier_info(law, rec, stage / FRONTIER_PLOT) if law is not None else None
    summary_public = public_summary(summary)
    card = render_card(repo_id, public_record(rec), summary_public, facts, base=base, data=data, loss_plot=loss_plot,
                       frontier=frontier, dim_scores=dim_scores(run, summary_public))
    (stage / CARD_FILE).write_text(card, encoding="utf-8")
    record_public = published_record(rec, repo_id, identity)
    (stage / RUN_RECORD).write_text(json.dumps(record_public, indent=2) + "\n", encoding="utf-8")
    if summary_public:
        (stage / RESULTS_FILE).write_text(json.dumps(summary_public, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    meta = model_meta(repo_id, summary_public, facts, base=base, data=data)
    (stage / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    return check_allowlist(stage)


def publish(
    run_dir: str | os.PathLike[str],
    repo_id: str | None = None,
    *,
    private: bool = False,
    dry_run: str | os.PathLike[str] | None = None,
    results: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    allow_random: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    frontier: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    no_scores: bool = False,
) -> PublishResult:
    """Check, stage and push a finished run dir as ``repo_id`` in one commit (or write the folder for a dry run).

    ``no_scores`` allows a run without MTEB scores; ``overwrite`` lets a dry run replace an earlier dry run of
    the same run (see :mod:`st_recipe.publishing.staging` for how one is recognised).
    """
    run = Path(run_dir)
    rec = RunDir(run).read()
    repo = validate_repo_id(repo_id if repo_id is not None else (rec.repo_id or ""))
    files = check_run_files(run)
    if rec.is_random and not allow_random:
        raise StRecipeError(f"run {str(run)!r} was trained from randomly initialised weights, not a pretrained model; "
                            "pass --allow-random to publish it anyway (the card will say so)")
    if overwrite and dry_run is None:
        raise StRecipeError("--overwrite only applies to --dry-run (a push replaces the repo's files by itself)")
    summary = _scores(run, results, no_scores)
    law = _fitted_law(frontier)
    secret = None if dry_run is not None else resolve_token(token)
    if revision is not None and not revision.strip():
        raise StRecipeError("--revision must name a branch")
    identity = run_identity(run)
    notes = _notes(summary, repo, identity)

    if dry_run is not None:
        target = Path(dry_run)
        check_dry_target(target, run, identity, overwrite=overwrite)
        target.parent.mkdir(parents=True, exist_ok=True)
        with staging_folder(target.parent, f".{target.name}.tmp-") as tmp:
            staged = stage_upload(tmp, run, files, rec, summary, repo, law, identity, link=False)
            check_no_secret(tmp, staged, token_to_scan_for(token))
            move_into_place(tmp, target)
        return PublishResult(repo_id=repo, files=staged, private=private, dry_run=target, notes=notes)
    result = _push_staged(run, files, rec, summary, repo, law, identity, secret=secret, private=private,
                          revision=revision, commit_message=commit_message)
    result.notes = notes
    return result


def _scores(run: Path, results: str | os.PathLike[str] | None, no_scores: bool) -> dict[str, Any] | None:
    """The run's eval summary, or None when it has no scored task and ``no_scores`` allows that (else refused)."""
    summary = results_for(run, results)
    if summary is None or not summary["tasks"]:
        if not no_scores:
            why = (f"run {str(run)!r} has no MTEB scores (no {RESULTS_FILE})" if summary is None else
                   f"{str(results) if results is not None else str(run / RESULTS_FILE)!r} has no scored task (all failed)")
            raise StRecipeError(f"{why}: run `st-recipe eval {run}` first, or pass --no-scores to publish without them")
        # Failures alone are no result worth a card section or an uploaded summary.
        return None
    return summary


def _fitted_law(frontier: str | os.PathLike[str] | None) -> Any:
    """The fitted scaling law whose frontier the card plots, when ``frontier`` names one."""
    if frontier is None:
        return None
    from st_recipe.planning.scaling import FittedLaw

    return FittedLaw.load(frontier)


def _notes(summary: dict[str, Any] | None, repo: str, identity: dict[str, str]) -> list[str]:
    """What the user should know about the scores published beside the model (missing, filed elsewhere, stale)."""
    notes: list[str] = []
    if summary is None:
        notes.append("no evaluation results (--no-scores): the card has no MTEB scores")
    elif summary.get("model_name") and summary["model_name"] != repo:
        notes.append(f"the results were filed as {summary['model_name']!r} in the mteb cache, not {repo!r}")
    if summary is not None and summary.get("revision") not in (None, identity["model_revision"]):
        notes.append(f"the results are for model revision {summary.get('revision')}, not this run's "
                     f"{identity['model_revision']} (re-run `st-recipe eval` if the weights changed)")
    return notes


def _push_staged(run: Path, files: list[str], rec: RunRecord, summary: dict[str, Any] | None, repo: str, law: Any,
                 identity: dict[str, str], *, secret: str | None, private: bool, revision: str | None,
                 commit_message: str | None) -> PublishResult:
    """Check the Hub side, stage the upload beside the run and push it in one commit."""
    from huggingface_hub import HfApi

    from st_recipe import __version__

    api = HfApi(token=secret)
    # Reachability, the token, the branch and the visibility are checked before the (slower) staging.
    existing_private = preflight(api, repo, private=private, revision=revision)
    with staging_folder(run.parent, f".{run.name}.publish-", anywhere=True) as stage:
        staged = stage_upload(stage, run, files, rec, summary, repo, law, identity, link=True)
        check_no_secret(stage, staged, secret)
        method = rec.method.name or "?"
        flops = rec.flops
        message = commit_message or f"Publish {repo.split('/')[1]} ({method}, {fmt_flops(flops.budget)} FLOP) with st-recipe"
        description = (f"st-recipe {__version__}: {len(staged)} files; FLOPs spent {fmt_flops(flops.spent)} "
                       f"of {fmt_flops(flops.budget)}")
        info, url = push(api, stage, repo, private=private, revision=revision, commit_message=message,
                         description=description)
    is_private = private if existing_private is None else existing_private
    return PublishResult(repo_id=repo, files=staged, private=is_private, commit=getattr(info, "oid", None),
                         commit_url=getattr(info, "commit_url", None), url=url)
