"""Pairs from a Hub dataset, read through ``datasets.load_dataset`` (streaming by default).

A streamed dataset cannot be sampled without reading all of it, so there a ``limit`` stops reading after
the first ``limit`` usable rows, which are then shuffled. Every failure to reach or read the dataset
(network, auth, missing repo or split) is one line suggesting a local file or the builtin pairs.
"""

from __future__ import annotations

from st_recipe.data.builtin import BUILTIN
from st_recipe.data.local_files import FILE_SUFFIXES
from st_recipe.data.pairs import Collector, PairData, first_line, pick_columns
from st_recipe.errors import StRecipeError


def load_hub(
    repo: str,
    config: str | None,
    split: str,
    anchor_column: str | None,
    positive_column: str | None,
    streaming: bool,
    limit: int | None,
    seed: int,
) -> PairData:
    """Pairs from split `split` of Hub dataset `repo` (config `config`), shuffled with `seed`."""
    import datasets

    label = repo + (f":{config}" if config else "")
    where = f"Hub dataset '{label}' ({split})"

    def unreachable(exc: BaseException) -> StRecipeError:
        return StRecipeError(
            f"could not load Hub dataset '{label}' split '{split}' ({first_line(exc)}); check the id, "
            f"or without Hub access use a local file ({', '.join(FILE_SUFFIXES)}) or '{BUILTIN}'"
        )

    try:
        ds = datasets.load_dataset(repo, config, split=split, streaming=streaming)
        if not streaming and limit is not None and len(ds) > limit:
            ds = ds.select(range(limit))
    except StRecipeError:
        raise
    except Exception as exc:  # network, auth, missing repo or split: all surface as one message
        raise unreachable(exc) from None

    col = Collector(where, "row")
    names = getattr(ds, "column_names", None)
    cols = pick_columns(names, anchor_column, positive_column, where) if names else None
    try:
        for pos, row in enumerate(ds, 1):
            if cols is None:
                cols = pick_columns(row.keys(), anchor_column, positive_column, where)
            a, p = cols
            if a not in row or p not in row:
                raise StRecipeError(f"{where}: row {pos} has no '{a}'/'{p}'; its keys: {', '.join(map(str, row))}")
            # Streaming cannot sample the whole set, so a limit reads the first `limit` usable pairs.
            if col.add(row[a], row[p], a, p, pos, row) and limit is not None and len(col.anchors) >= limit:
                break
    except StRecipeError:
        raise
    except Exception as exc:
        raise unreachable(exc) from None
    if cols is None:
        raise StRecipeError(f"{where} has no rows")
    return col.finish(f"'{cols[0]}' or '{cols[1]}'", limit, seed, f"hub:{label}:{split}")
