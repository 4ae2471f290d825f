"""Every method: train with SentenceTransformerTrainer, merge, save; plain sentence-transformers reloads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from st_recipe import build_encoder, get_method
from st_recipe._text import looks_like_local_path
from st_recipe.encoder import save_encoder
from tests import kit

TEXTS = ["The cat sat on the mat.", "Embeddings map sentences to vectors.", "He cooked pasta for dinner."]
METHODS = {
    "full": {},
    "freeze": {"blocks": 1},
    "bias": {},
    "lora": {"r": 8},
    "propulsion": {"degree": 10},
    "peft-ia3": {"peft_type": "ia3"},
    "peft-dora": {"peft_type": "lora", "r": 4, "use_dora": True, "target_modules": ["query_key_value", "dense"]},
}

RELOAD = textwrap.dedent(
    """
    import json, sys
    import torch
    from sentence_transformers import SentenceTransformer
    out = {}
    for name, path in json.loads(sys.argv[1]).items():
        model = SentenceTransformer(path)
        out[name] = model.encode(json.loads(sys.argv[2]), convert_to_tensor=True).tolist()
    assert "st_recipe" not in sys.modules, "st_recipe must not be needed to load a saved model"
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def trained(tiny_neox_dir, tmp_path_factory):
    """Train each method a few steps, merge and save; keep the in-memory embeddings."""
    root = tmp_path_factory.mktemp("saved")
    results = {}
    for key, args in METHODS.items():
        model = build_encoder(str(tiny_neox_dir), max_seq_length=32)
        untrained = model.encode(TEXTS, convert_to_tensor=True)
        method = get_method(key.split("-")[0], **args)
        method.apply(model)
        kit.train_steps(model, root / f"{key}-trainer")
        trained_emb = model.encode(TEXTS, convert_to_tensor=True)
        method.merge(model)
        merged_emb = model.encode(TEXTS, convert_to_tensor=True)
        path = save_encoder(model, root / key)
        results[key] = {"path": path, "untrained": untrained, "trained": trained_emb, "merged": merged_emb}
    return results


def test_training_changed_every_model(trained):
    for key, r in trained.items():
        assert (r["trained"] - r["untrained"]).abs().max().item() > 1e-4, key


def test_merge_keeps_the_trained_embeddings(trained):
    for key, r in trained.items():
        assert (r["merged"] - r["trained"]).abs().max().item() <= 1e-5, key


def test_plain_sentence_transformers_reloads_every_method(trained):
    paths = {k: str(r["path"]) for k, r in trained.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONPATH")}
    proc = subprocess.run(
        [sys.executable, "-c", RELOAD, json.dumps(paths), json.dumps(TEXTS)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(Path(paths["full"]).parent),  # not the repo: st_recipe must not be importable by accident
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    reloaded = json.loads(proc.stdout.strip().splitlines()[-1])
    for key, r in trained.items():
        diff = (torch.tensor(reloaded[key]) - r["merged"]).abs().max().item()
        assert diff <= 1e-5, (key, diff)


def test_saved_folders_are_plain(trained):
    for key, r in trained.items():
        files = {p.relative_to(r["path"]).as_posix() for p in Path(r["path"]).rglob("*") if p.is_file()}
        assert not any("adapter" in f for f in files), (key, files)
        modules = json.loads((Path(r["path"]) / "modules.json").read_text())
        assert all(m["type"].startswith("sentence_transformers.") for m in modules), key
        for f in files:
            if f.endswith(".json"):
                text = (Path(r["path"]) / f).read_text()
                assert "st_recipe" not in text or f == "config_sentence_transformers.json", (key, f)
                for value in _strings(json.loads(text)):
                    assert not looks_like_local_path(value), (key, f, value)


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value
