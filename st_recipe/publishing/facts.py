"""What the card and the metadata state about a model: its base, its data, its shape, and its mteb ``ModelMeta``.

The base and the data are described as honestly as the run record allows (a Hub id, a local folder or file,
random weights); sizes come from the saved files themselves (safetensors headers, configs), not from the record.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import struct
from pathlib import Path
from typing import Any

from st_recipe.data import recorded_hub_id
from st_recipe.errors import StRecipeError
from st_recipe.publishing.staging import read_json
from st_recipe.run import RunRecord

_EMBEDDING_NAMES = ("embed_in.", "embed_tokens.", "wte.", "word_embeddings.", "embed_out.", "lm_head.")


# ----------------------------------------------------------------------------------------- base and data


def base_info(rec: RunRecord) -> dict[str, Any]:
    """Who the base model is, as honestly as the record allows: a Hub id, a local folder or random weights."""
    from st_recipe.models.catalog import get_spec

    raw = rec.base_model
    load_id = str(rec.model.load_id or raw)
    random_init = rec.is_random
    spec = None
    try:
        spec = get_spec(raw.removeprefix("random:") if random_init else load_id)
    except StRecipeError:
        pass
    if random_init:
        shape = spec.name if spec else raw.removeprefix("random:")
        return {"kind": "random", "hub_id": None, "display": f"randomly initialised {shape} (not pretrained)",
                "license": None, "family": spec.family if spec else None}
    if os.path.isabs(load_id) or load_id.startswith(("~", ".")) or os.path.isdir(load_id):
        name = Path(load_id).name or "model"
        return {"kind": "local", "hub_id": None, "display": f"a local model folder `{name}` (not on the Hub)",
                "license": None, "family": None}
    return {"kind": "hub", "hub_id": load_id, "display": load_id, "license": spec.license if spec else None,
            "family": spec.family if spec else ("pythia" if "pythia" in load_id.lower() else None)}


def data_info(rec: RunRecord) -> dict[str, Any]:
    """The training data: a Hub dataset id to list in the card's metadata, or a description."""
    source = str(rec.data.source or "builtin")
    pairs = rec.data.train_pairs
    if source.split(":")[0].lower() == "builtin":
        return {"hub_id": None, "kind": "builtin", "short": "st-recipe's built-in offline pairs", "description": (
            "st-recipe's built-in offline pairs (a fixed, versioned set shipped in the package: docstrings of the Python "
            "standard library and of st-recipe's dependencies, a docstring's summary sentence as the anchor, the rest of it "
            "as the positive); English technical prose, not a Hub dataset"),
            "pairs": pairs}
    hub = recorded_hub_id(source)
    if hub:
        link = f"[{source}](https://huggingface.co/datasets/{hub})"
        return {"hub_id": hub, "kind": "hub", "short": link, "description": f"the Hub dataset {link}",
                "pairs": pairs}
    name = Path(source).name or "pairs"
    return {"hub_id": None, "kind": "local", "short": f"a local file of pairs (`{name}`)",
            "description": f"a local file `{name}` of (anchor, positive) pairs, not published",
            "pairs": pairs}


# ----------------------------------------------------------------------------------------- model facts


def _safetensors_counts(paths: list[Path]) -> dict[str, int]:
    """Parameter and byte counts read from safetensors headers (no tensor is loaded)."""
    total = embedding = nbytes = 0
    for path in paths:
        with path.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            n = math.prod(info.get("shape") or [1])
            total += n
            nbytes += int(info["data_offsets"][1]) - int(info["data_offsets"][0])
            if any(part in name for part in _EMBEDDING_NAMES):
                embedding += n
    return {"n_parameters": total, "n_embedding_parameters": embedding, "bytes": nbytes}


def model_facts(run: Path, files: list[str]) -> dict[str, Any]:
    """Embedding size, sequence length, similarity function and parameter counts from the saved files."""
    facts: dict[str, Any] = _safetensors_counts([run / f for f in files if f.endswith(".safetensors")])
    # sentence-transformers 6 keeps the sequence limit in the tokenizer config; older folders in sentence_bert_config.
    limit = read_json(run / "sentence_bert_config.json").get("max_seq_length")
    if limit is None:
        limit = read_json(run / "tokenizer_config.json").get("model_max_length")
    facts["max_seq_length"] = int(limit) if isinstance(limit, (int, float)) and 0 < limit < 1e7 else None
    facts["similarity_fn_name"] = read_json(run / "config_sentence_transformers.json").get("similarity_fn_name") or "cosine"
    dim = None
    pooling_mode = None
    modules = json.loads((run / "modules.json").read_text(encoding="utf-8"))
    for module in modules:
        cfg = read_json(run / str(module.get("path", "")) / "config.json") if module.get("path") else {}
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind == "Pooling":
            dim = cfg.get("embedding_dimension") or cfg.get("word_embedding_dimension") or dim
            pooling_mode = next((k.removeprefix("pooling_mode_").removesuffix("_tokens") for k, v in cfg.items()
                                 if k.startswith("pooling_mode_") and v is True), cfg.get("pooling_mode"))
        elif kind == "Dense":
            dim = cfg.get("out_features") or dim
    facts["embed_dim"] = dim or read_json(run / "config.json").get("hidden_size")
    facts["pooling"] = pooling_mode
    facts["normalize"] = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    facts["model_type"] = read_json(run / "config.json").get("model_type")
    return facts


# ----------------------------------------------------------------------------------------- mteb metadata


def model_meta(repo_id: str, summary: dict[str, Any] | None, facts: dict[str, Any], *, base: dict[str, Any],
               data: dict[str, Any]) -> dict[str, Any]:
    """mteb ``ModelMeta`` fields for a leaderboard submission (validated by mteb when it is installed)."""
    fields: dict[str, Any] = {
        "name": repo_id,
        # Results are filed under this revision in the mteb cache; it must match for a submission.
        "revision": (summary or {}).get("revision"),
        "release_date": datetime.date.today().isoformat(),
        "languages": ["eng-Latn"],
        "n_parameters": facts["n_parameters"],
        "n_embedding_parameters": facts["n_embedding_parameters"],
        "memory_usage_mb": round(facts["bytes"] / 2**20, 2),
        "max_tokens": facts["max_seq_length"],
        "embed_dim": facts["embed_dim"],
        "license": base["license"] or "not specified",
        "open_weights": True,
        "public_training_code": None,
        "public_training_data": f"https://huggingface.co/datasets/{data['hub_id']}" if data["hub_id"] else None,
        "framework": ["Sentence Transformers", "PyTorch"],
        "reference": f"https://huggingface.co/{repo_id}",
        "similarity_fn_name": facts["similarity_fn_name"],
        "use_instructions": False,
        # The builtin pairs are Python docstrings, disjoint from every MTEB task; other data is not annotated.
        "training_datasets": [] if data["kind"] == "builtin" else None,
        "adapted_from": base["hub_id"],
    }
    try:
        from mteb.models import ModelMeta, SentenceTransformerEncoderWrapper
    except ImportError:
        return {**fields, "loader": "SentenceTransformerEncoderWrapper", "modalities": ["text"], "model_type": ["dense"]}
    try:
        meta = ModelMeta(loader=SentenceTransformerEncoderWrapper,
                         **{**fields, "training_datasets": None if fields["training_datasets"] is None else set()})
    except ValueError as exc:
        first = str(exc).strip().splitlines()
        raise StRecipeError(f"mteb rejected the model metadata: {' '.join(first[:3])}") from None
    out = meta.to_dict()
    out["similarity_fn_name"] = getattr(out["similarity_fn_name"], "value", out["similarity_fn_name"])
    return out
