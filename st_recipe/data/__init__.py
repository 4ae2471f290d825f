"""(anchor, positive) text pairs for contrastive training: local files, Hub datasets, and a built-in default.

Sources accepted by :func:`load_pairs`:

* ``"builtin"``: an offline default that needs no download: a fixed, versioned set of pairs shipped
  in this package (``builtin_pairs_v1.jsonl.gz``, described in ``BUILTIN_PAIRS.md``), the same
  wherever st-recipe is installed. It was mined once, by ``scripts/mine_builtin_pairs.py`` in the
  repository, from the docstrings of the Python standard library and of packages st-recipe depends on:
  the anchor is a docstring's summary sentence, the positive is the rest of that docstring with
  doctests, literal code blocks, underlines and "See Also"/"References" sections removed. Real
  human-written text, not templates; no text occurs twice. The file's split column holds out
  ``split="test"`` (500 pairs, chosen by a hash of the anchor), so train and test never share a text.
  Loading checks the file against :data:`BUILTIN_SHA256` and keeps it in memory for the process.
* A local file: ``.jsonl``/``.ndjson``/``.json`` (JSON lines, or one JSON array of objects), ``.csv``,
  ``.tsv`` or ``.parquet``. Columns are found automatically (see ``COLUMN_PAIRS``) or named with
  ``anchor_column``/``positive_column``. Local files have no splits.
* A Hub dataset ``org/name``, ``org/name:config`` or ``org/name:config:split`` (``org/name::split``
  for the default config), read through ``datasets.load_dataset`` (streaming by default; ``streaming``
  applies to Hub ids only). Without Hub access this fails with one line suggesting a file or builtin.

Every result is shuffled with ``seed``. ``limit`` keeps the first ``limit`` pairs after shuffling (a
seeded random sample), except for a streamed Hub dataset, which cannot be sampled without reading it
all: there reading stops after the first ``limit`` usable rows, which are then shuffled.

The BAAI BGE layout ``{"query": str, "pos": [str, ...], "neg": [...]}`` gives one pair per row with the
*first* positive. Expanding every positive would repeat the query across pairs, weighting multi-positive
queries more and breaking the paper's pairs-per-FLOP accounting (one pair = one query and one positive);
the paper trains with in-batch negatives only, so ``neg`` (and any ``negative`` column) is ignored.

Training with in-batch negatives must not put the same text twice in one batch (the copy becomes a false
negative). Exact duplicate pairs are removed here; pairs that share only an anchor or only a positive
are kept, and the trainer separates them with sentence-transformers'
``BatchSamplers.NO_DUPLICATES`` (:data:`BATCH_SAMPLER`). Texts are not truncated here: the tokenizer
cuts them at the recipe's maximum sequence length.

Layout: :mod:`.sources` classifies a source and dispatches it to :mod:`.builtin`, :mod:`.files` (one reader
per suffix in ``READERS``) or :mod:`.hub`; :mod:`.pairs` holds :class:`PairData` and the row handling they
share. This module only re-exports the public names.
"""

from __future__ import annotations

from st_recipe.data.builtin import BUILTIN, BUILTIN_SHA256, BUILTIN_VERSION
from st_recipe.data.local_files import FILE_SUFFIXES
from st_recipe.data.pairs import BATCH_SAMPLER, COLUMN_PAIRS, PairData, PairStats, check_enough
from st_recipe.data.sources import DataSource, classify_source, load_pairs, recorded_hub_id

__all__ = [
    "BATCH_SAMPLER", "BUILTIN", "BUILTIN_SHA256", "BUILTIN_VERSION", "COLUMN_PAIRS", "DataSource", "FILE_SUFFIXES",
    "PairData", "PairStats", "check_enough", "classify_source", "load_pairs", "recorded_hub_id",
]
