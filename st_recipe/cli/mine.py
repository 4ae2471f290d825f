"""``st-recipe mine``: add hard negatives to a pairs file with a model's own similarity search."""

from __future__ import annotations

from typing import Any, Callable

import click

from st_recipe.cli._common import check_model, display, quiet_libraries
from st_recipe.data.sources import check_source
from st_recipe.errors import StRecipeError
from st_recipe.outputs import check_can_create


@click.command("mine")
@click.argument("data")
@click.option("--model", required=True, help="Encoder to mine with: a base model (catalogue name, Hub id, folder) or "
                                             "a trained run dir.")
@click.option("--out", required=True, help="JSON-lines file to write: anchor, positive, negative_1..K per line.")
@click.option("--num-negatives", type=int, default=1, show_default=True, help="Hard negatives per pair (K).")
@click.option("--range-min", type=int, default=0, show_default=True,
              help="Skip this many of the most similar candidates first.")
@click.option("--range-max", type=int, default=None, help="Consider only this many top candidates (default: "
                                                          "range-min + 100 + K).")
@click.option("--absolute-margin", default="0", show_default=True,
              help="Skip candidates scoring above the pair's positive score minus this cosine gap (likely false "
                   "negatives); 'off' keeps them.")
@click.option("--relative-margin", type=float, default=0.0, show_default=True,
              help="Also skip candidates scoring above (1 - margin) x the positive's score (NV-Retriever used 0.05 "
                   "with trained embedders); 0 is off.")
@click.option("--sampling", type=click.Choice(["top", "random"]), default="top", show_default=True,
              help="Take the top K remaining candidates, or K at random among them.")
@click.option("--max-seq-length", type=int, default=75, show_default=True, help="Truncate texts to this many tokens.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Texts per encoding batch.")
@click.option("--anchor-column", default=None, help="Column holding the anchor/query text.")
@click.option("--positive-column", default=None, help="Column holding the positive text.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--quiet", is_flag=True, help="No progress bars or notices; only the result line (and errors).")
def mine_cmd(data: str, model: str, out: str, num_negatives: int, range_min: int, range_max: int | None,
             absolute_margin: str, relative_margin: float, sampling: str, max_seq_length: int, batch_size: int, anchor_column: str | None,
             positive_column: str | None, overwrite: bool, quiet: bool = False) -> None:
    """Mine hard negatives for the pairs in DATA and write them where `train --hard-negatives K` reads them."""
    from pathlib import Path

    from st_recipe.data.mining import check_mining
    from st_recipe.outputs import check_file

    absolute = parse_margin(absolute_margin)
    check_mining(num_negatives, range_min, range_max, relative_margin, sampling, absolute)
    if max_seq_length < 2:
        raise StRecipeError(f"--max-seq-length must be an integer >= 2, not {max_seq_length}")
    if batch_size < 1:
        raise StRecipeError(f"--batch-size must be an integer >= 1, not {batch_size}")
    target = str(check_file(out, Path(out), "--out", overwrite=overwrite, suffixes=(".jsonl", ".ndjson")).resolve())
    check_can_create(target, "--out")
    model_arg = check_model(model)
    pairs = check_source(data, anchor_column=anchor_column, positive_column=positive_column)
    quiet_libraries()
    if quiet:
        import logging

        logging.getLogger("st_recipe").setLevel(logging.ERROR)  # the result line names random weights itself
    from st_recipe.costing.flops import profile_model
    from st_recipe.data import load_pairs
    from st_recipe.data.mining import mine_negatives
    from st_recipe.encoder import build_encoder

    if not hasattr(pairs, "anchors"):
        pairs = load_pairs(data, anchor_column=anchor_column, positive_column=positive_column)
    encoder = _encoder(model_arg, max_seq_length, build_encoder)
    mined, report = mine_negatives(encoder, pairs, num_negatives, range_min=range_min, range_max=range_max,
                                   absolute_margin=absolute, relative_margin=relative_margin or None,
                                   sampling=sampling, batch_size=batch_size,
                                   profile=profile_model(encoder), progress=not quiet)
    write_pairs(mined, target)
    if report.shortfall():
        click.echo(f"warning: {report.shortfall()}", err=True)
    click.echo(f"{report.summary()} with {display(model)}; wrote {out} ({len(mined):,} pairs; train with "
               f"--data {out} --hard-negatives {num_negatives})")


def parse_margin(text: str) -> float | None:
    """``--absolute-margin``: a number, or 'off' for no filter."""
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise StRecipeError(f"--absolute-margin must be a number or 'off', not {text!r}") from None


def _encoder(model: Any, max_seq_length: int, build: Callable[..., Any]) -> Any:
    """A run dir or sentence-transformers folder (a classified ModelArg) as saved; anything else through build_encoder."""
    if model.saved_encoder:
        from sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(str(model.path), device="cpu")
        encoder.max_seq_length = max_seq_length
        return encoder
    return build(model.given, max_seq_length=max_seq_length)


def write_pairs(pairs: object, path: str) -> None:
    """Write pairs (with their negatives as negative_1..K) as JSON lines, atomically."""
    import json

    from st_recipe._io import atomic_write_text

    lines = []
    negatives = getattr(pairs, "negatives", None) or [[] for _ in pairs.anchors]  # type: ignore[attr-defined]
    for a, p, negs in zip(pairs.anchors, pairs.positives, negatives):  # type: ignore[attr-defined]
        row = {"anchor": a, "positive": p, **{f"negative_{j}": n for j, n in enumerate(negs, 1)}}
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + "\n")
