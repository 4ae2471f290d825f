"""The model card (README.md): front matter with the MTEB model-index, and a body rendered from the template.

The template is ``model_cards/model_card.md.j2`` (package data when installed). The front matter is built as
``huggingface_hub.ModelCardData`` so the model-index is laid out the way the Hub parses it, and the rendered
card is parsed back before it is used. The method is cited through its class's ``citation``.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_recipe.errors import StRecipeError
from st_recipe.run import RunRecord

if TYPE_CHECKING:
    from st_recipe.planning.recipes import Recipe

TEMPLATE = "model_card.md.j2"
_SHORT_FAILURE = 80


def fmt_flops(value: Any) -> str:
    """A FLOP count as the card shows it, ``-`` when there is none."""
    from st_recipe.costing.flops import format_flops

    return format_flops(float(value)) if isinstance(value, (int, float)) else "-"


def template_path() -> Path:
    """The card template (``model_cards/`` in a checkout, package data when installed)."""
    here = Path(__file__).resolve().parents[2] / "model_cards"
    if (here / TEMPLATE).is_file():
        return here / TEMPLATE
    return Path(str(resources.files("st_recipe") / "_model_cards")) / TEMPLATE


# ----------------------------------------------------------------------------------------- card pieces


def _recipe_rows(recipe: Recipe) -> list[dict[str, str]]:
    """One row per recipe field: the value as shown in the card and its provenance."""
    rows = []
    for name, value in recipe.to_dict().items():
        if name == "provenance":
            continue
        if name == "budget" and isinstance(value, (int, float)):
            shown = f"{fmt_flops(value)} FLOP"
        elif isinstance(value, (dict, list)):
            shown = json.dumps(value, sort_keys=True)
        else:
            shown = "-" if value is None else str(value)
        p = recipe.provenance[name]
        rows.append({"field": name, "value": shown, "source": p.source, "note": p.note})
    return rows


def _method_citation(name: str) -> str:
    """The BibTeX the method's class gives (empty for the paper's own methods and for unknown ones)."""
    from st_recipe.methods import get_method_class

    try:
        return str(get_method_class(name).citation or "").strip()
    except (StRecipeError, ImportError, AttributeError):
        return ""


def _mteb_task_info(names: list[str]) -> dict[str, dict[str, Any]]:
    """Hub dataset path and revision of each mteb task (from mteb's own metadata when mteb is installed)."""
    out: dict[str, dict[str, Any]] = {}
    try:
        import mteb
    except ImportError:
        return out
    for name in names:
        try:
            dataset = mteb.get_task(name).metadata.dataset or {}
        except Exception:  # noqa: BLE001 -- an unknown or renamed task just falls back to the mteb/<task> naming
            continue
        out[name] = {"path": dataset.get("path"), "revision": dataset.get("revision")}
    return out


def eval_results(summary: dict[str, Any] | None) -> list[Any]:
    """``EvalResult`` entries (one per mteb task's main score) for the card's model-index."""
    from huggingface_hub import EvalResult

    if not summary:
        return []
    rows = [r for r in summary["tasks"] if r.get("source", "mteb") != "local"]
    info = _mteb_task_info([r["task"] for r in rows])
    results = []
    for row in rows:
        task = row["task"]
        subsets = [s for s in (row.get("subsets") or []) if s != "default"]
        meta = info.get(task, {})
        results.append(EvalResult(
            task_type=str(row.get("type") or "Unknown"),
            dataset_type=str(meta.get("path") or f"mteb/{task}"),
            dataset_name=f"MTEB {task}",
            dataset_config=subsets[0] if len(subsets) == 1 else None,
            dataset_split=row.get("split") or None,
            dataset_revision=meta.get("revision"),
            metric_type=row["main_score_name"],
            metric_value=float(row["main_score"]),
        ))
    return results


def _score_table(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The card's MTEB table: per-task scores, the base model's and the difference, and their means."""
    if not summary:
        return None

    def fmt(x: float | None, sign: str = "") -> str:
        return "-" if x is None else f"{x:{sign}.4f}"

    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    base = summary.get("base") if isinstance(summary.get("base"), dict) else None
    base_scores = {r["task"]: float(r["main_score"]) for r in (base or {}).get("tasks", [])}
    mine = {r["task"]: float(r["main_score"]) for r in summary["tasks"]}
    rows = []
    for r in summary["tasks"]:
        b = base_scores.get(r["task"])
        rows.append({"task": r["task"], "type": r.get("type") or "-", "metric": r["main_score_name"],
                     "score": fmt(mine[r["task"]]), "base": fmt(b), "diff": fmt(None if b is None else mine[r["task"]] - b, "+"),
                     "local": r.get("source") == "local"})
    # The comparison mean covers only tasks both models have, so a task the base missed cannot inflate it.
    common = [t for t in base_scores if t in mine]
    mine_common, base_common = mean([mine[t] for t in common]), mean([base_scores[t] for t in common])
    return {
        "rows": rows,
        "has_base": base is not None,
        "base_name": (base or {}).get("model_name"),
        "mean": fmt(mean(list(mine.values()))),
        "common_mean": fmt(mine_common),
        "base_mean": fmt(base_common),
        "mean_diff": fmt(None if mine_common is None or base_common is None else mine_common - base_common, "+"),
        "failed": [_failure_line(f, f["task"] in mine) for f in summary.get("failed") or []],
        "model_name": summary.get("model_name"),
        "revision": summary.get("revision"),
        "any_local": any(r.get("source") == "local" for r in summary["tasks"]),
    }


def _failure_line(item: dict[str, Any], has_score: bool) -> str:
    """One short line for a failed task: its name, the gist of the error, and whether an earlier score stands."""
    error = " ".join(str(item.get("error") or "failed").split())
    # eval's messages put the gist first and details in parentheses or after a ";".
    gist = re.split(r" \(|; ", error, maxsplit=1)[0]
    if len(gist) > _SHORT_FAILURE:
        gist = gist[: _SHORT_FAILURE - 3].rstrip() + "..."
    tail = "an earlier score is shown above" if has_score else "no score"
    return f"{item['task']}: {gist} ({tail})"


def _md_cell(value: Any) -> str:
    """A value made safe for one Markdown table cell."""
    return " ".join(str(value).split()).replace("|", "\\|") if value is not None else ""


def _hardware(rec: RunRecord) -> str:
    hw = rec.hardware
    cores = hw.cpu_count if hw.cpu_count is not None else "?"
    text = f"{hw.gpus} × {hw.gpu}" if hw.gpu else f"CPU ({cores} cores)"
    if (hw.world_size or 1) > 1:
        text += f", {hw.world_size} processes"
    return text


# ----------------------------------------------------------------------------------------- the card


def _levers(recipe: Recipe, negatives: dict[str, Any] | None = None) -> dict[str, Any]:
    """The quality levers the run used (bidirectional attention, prompts, Matryoshka dims, hard negatives)."""
    roles = {"query": "queries (anchors)", "document": "documents (positives)"}
    return {
        "bidirectional": recipe.attention == "bidirectional",
        # JSON-quoted, so a prompt's trailing space (which matters) shows
        "prompts": [{"name": k, "text": json.dumps(v, ensure_ascii=False), "role": roles.get(k, k)}
                    for k, v in recipe.prompts.items()],
        "include_prompt": recipe.include_prompt,
        "matryoshka_dims": list(recipe.matryoshka_dims or []),
        "hard_negatives": negatives if recipe.hard_negatives and negatives else None,
    }


def _card_data(repo_id: str, base: dict[str, Any], data: dict[str, Any], method: str, facts: dict[str, Any],
               evals: list[Any]) -> Any:
    """The card's front matter as ``ModelCardData`` (so the model-index is laid out the way the Hub parses it)."""
    from huggingface_hub import ModelCardData

    tags = ["st-recipe", "mteb", "sentence-transformers", "feature-extraction", "sentence-similarity", method]
    if base.get("family"):
        tags.append(base["family"])
    if facts.get("model_type") and facts["model_type"] not in tags:
        tags.append(str(facts["model_type"]))
    if base["kind"] == "random":
        tags.append("random-init")
    return ModelCardData(
        model_name=repo_id,
        base_model=base["hub_id"],
        license=base["license"],
        language=["en"],
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        datasets=[data["hub_id"]] if data["hub_id"] else None,
        tags=list(dict.fromkeys(tags)),
        eval_results=evals or None,
    )


def _dev_curve(dev: dict[str, Any] | None) -> dict[str, Any] | None:
    """The dev-score curve (--eval-file) as card rows: training FLOPs, step, score."""
    if not dev or not dev.get("points"):
        return None
    return {"task": dev.get("task") or "dev", "eval_flops": fmt_flops(dev.get("eval_flops")),
            "rows": [{"flops": fmt_flops(p.get("flops")), "step": p.get("step"), "score": f"{float(p['score']):.4f}"}
                     for p in dev["points"] if isinstance(p.get("score"), (int, float))]}


def render_card(repo_id: str, rec: RunRecord, summary: dict[str, Any] | None, facts: dict[str, Any], *,
                base: dict[str, Any], data: dict[str, Any], loss_plot: str | None = None,
                frontier: dict[str, Any] | None = None, dim_scores: dict[str, Any] | None = None) -> str:
    """The model card (README.md): front matter from ``ModelCardData`` and a body from the Jinja2 template.

    ``rec`` and ``summary`` are shown as they are: pass the public copies (local paths cut).
    """
    import jinja2
    from huggingface_hub import ModelCard

    from st_recipe.training import recorded_recipe

    recipe = recorded_recipe(rec)
    method = rec.method
    method_name = method.name or "unknown"
    evals = eval_results(summary)
    card_data = _card_data(repo_id, base, data, method_name, facts, evals)
    flops = rec.flops
    params = method.params or {}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_path().parent)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["cell"] = _md_cell
    text = env.get_template(TEMPLATE).render(
        card_data=card_data.to_yaml(),
        repo_id=repo_id,
        name=repo_id.split("/")[1],
        base=base,
        data=data,
        method={"name": method_name, "args": json.dumps(method.args or {}, sort_keys=True),
                "n_params": params.get("n_params"), "n_trainable": params.get("n_trainable"),
                "fraction": params.get("trainable_fraction"), "cost_formula": method.cost_formula or None,
                "citation": _method_citation(method.name)},
        recipe_rows=_recipe_rows(recipe),
        levers=_levers(recipe, rec.data.hard_negatives),
        dim_scores=dim_scores,
        flops={"budget": fmt_flops(flops.budget), "planned": fmt_flops(flops.planned),
               "spent": fmt_flops(flops.spent), "paper_formula": fmt_flops(flops.paper_formula),
               "padded": fmt_flops(flops.executed_with_padding),
               "fraction": f"{float(flops.spent_fraction or 0):.2%}", "stopped_by": flops.stopped_by or "-",
               "not_counted": flops.not_counted},
        run={"pairs": f"{int(rec.pairs_seen or 0):,}", "tokens": f"{int(rec.tokens_seen or 0):,}",
             "steps": rec.steps, "planned_steps": rec.planned_steps,
             "wall": f"{float(rec.wall_time_s or 0):,.1f} s", "hardware": _hardware(rec),
             "epochs": rec.data.epochs, "seed": rec.seed, "final_loss": rec.loss.final,
             "versions": ", ".join(f"{k} {v}" for k, v in (rec.versions or {}).items())},
        facts=facts,
        loss_plot=loss_plot,
        dev=_dev_curve(rec.dev),
        frontier=frontier,
        mteb=_score_table(summary),
        heldout={"before": rec.heldout.before, "after": rec.heldout.after},
        random_init=base["kind"] == "random",
        # Pythia is GPT-NeoX; a local or random base of that architecture is cited with it too.
        cite_pythia=base.get("family") == "pythia" or facts.get("model_type") == "gpt_neox",
    )
    card = ModelCard(text)
    # Parse it back as the Hub would: a model-index that does not survive the round trip is a bug here.
    if len(card.data.eval_results or []) != len(evals):
        raise StRecipeError("internal error: the card's model-index does not parse back")
    return text
