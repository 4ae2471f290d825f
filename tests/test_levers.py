"""Quality levers: bidirectional attention, instruction prompts, Matryoshka embeddings (recipe fields, train, eval, card)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from st_recipe import StRecipeError
from st_recipe.planning.recipes import Recipe

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["The cat sat on the mat.", "A dog is running in the park.", "Rivers flow to the sea."]


def _first_token_states(st_model, ids_a, ids_b):
    import torch

    hf = st_model[0].auto_model
    hf.eval()
    with torch.no_grad():
        mask = torch.ones(1, len(ids_a), dtype=torch.long)
        a = hf(input_ids=torch.tensor([ids_a]), attention_mask=mask).last_hidden_state[0, 0]
        b = hf(input_ids=torch.tensor([ids_b]), attention_mask=mask).last_hidden_state[0, 0]
    return float((a - b).abs().max())


def _fresh_process_encode(folder: Path, texts: list[str], **encode_kwargs) -> list[list[float]]:
    """Encode in a new interpreter that cannot import st_recipe, with plain SentenceTransformer(path)."""
    code = textwrap.dedent(f"""
        import json, sys
        sys.modules["st_recipe"] = None  # any import of st_recipe now fails
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer({str(folder)!r}, device="cpu")
        emb = model.encode({texts!r}, convert_to_numpy=True, **{encode_kwargs!r})
        print(json.dumps(emb.tolist()))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ recipe fields


def test_defaults_are_off_with_measured_provenance_and_plan_stays_torch_free():
    code = textwrap.dedent("""
        import sys
        from st_recipe.planning.planner import plan
        r = plan(1e16)
        assert r.attention == "causal" and r.prompts == {} and r.include_prompt is True and r.matryoshka_dims is None
        assert r.hard_negatives == 0
        for k in ("attention", "prompts", "matryoshka_dims", "hard_negatives"):
            p = r.provenance[k]
            assert p.source == "measured" and "bench/results/" in p.note, (k, p)
        assert "torch" not in sys.modules and "sentence_transformers" not in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_recipe_fields_validate_and_round_trip(tmp_path):
    base = dict(model="pythia-70m", method="full", pairs=100)
    r = Recipe(**base, attention="bidirectional", prompts={"query": "query: ", "document": "passage: "},
               include_prompt=False, matryoshka_dims=[64, 32, 16])
    back = Recipe.load(r.save(tmp_path / "r.yaml"))
    assert (back.attention, back.prompts, back.include_prompt, back.matryoshka_dims) == (
        "bidirectional", {"query": "query: ", "document": "passage: "}, False, [64, 32, 16])
    assert Recipe(**base, matryoshka_dims="64, 32").matryoshka_dims == [64, 32]
    bad = [
        (dict(attention="both"), "attention must be causal or bidirectional"),
        (dict(prompts={"question": "q: "}), "unknown prompt name 'question'"),
        (dict(prompts={"query": ""}), "must be a non-empty string"),
        (dict(matryoshka_dims=[64, 64]), "must be distinct"),
        (dict(matryoshka_dims=[64, 0]), "must be positive"),
        (dict(matryoshka_dims=[]), "non-empty list"),
        (dict(matryoshka_dims="64,x"), "comma-separated integers"),
        (dict(include_prompt="no"), "include_prompt must be true or false"),
    ]
    for kw, message in bad:
        with pytest.raises(StRecipeError, match=message) as info:
            Recipe(**base, **kw)
        assert "\n" not in str(info.value)


def test_matryoshka_dims_larger_than_the_model_are_refused(tiny_neox_dir, tmp_path):
    from st_recipe.planning.recipes import check_matryoshka_dims
    from st_recipe.training import train

    with pytest.raises(StRecipeError, match=r"matryoshka dims \[64\] exceed the model's embedding dimension 32"):
        check_matryoshka_dims([64, 16], 32)
    recipe = Recipe(model=str(tiny_neox_dir), method="full", pairs=640, batch_size=16, budget=8e9, max_seq_length=32,
                    matryoshka_dims=[48, 16])
    with pytest.raises(StRecipeError, match="exceed the model's embedding dimension 32"):
        train(recipe, "builtin", out=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "modules.json").exists()


# ------------------------------------------------------------------------------------------ bidirectional


@pytest.mark.parametrize("fixture", ["tiny_neox_dir", "tiny_llama_dir", "tiny_qwen_dir"])
def test_bidirectional_first_token_sees_the_last_and_causal_does_not(request, fixture):
    from st_recipe.encoder import build_encoder

    folder = str(request.getfixturevalue(fixture))
    causal = build_encoder(folder, max_seq_length=32)
    bidir = build_encoder(folder, max_seq_length=32, attention="bidirectional")
    assert _first_token_states(causal, [3, 4, 5, 6], [3, 4, 5, 9]) == 0.0
    assert _first_token_states(bidir, [3, 4, 5, 6], [3, 4, 5, 9]) > 1e-4
    assert bidir[0].auto_model.config.is_causal is False
    # The same holds through sentence-transformers' own padded batches (mask path with padding).
    a = bidir.encode(["one two three", "one"], convert_to_tensor=True)
    b = bidir.encode(["one two four", "one"], convert_to_tensor=True)
    assert float((a[1] - b[1]).abs().max()) == 0.0  # another row of the batch is not seen
    assert float((a[0] - b[0]).abs().max()) > 0


def test_bidirectional_folder_reloads_identically_in_a_fresh_process(tiny_neox_dir, tiny_llama_dir, tmp_path):
    import numpy as np

    from st_recipe.encoder import build_encoder, save_encoder

    for name, folder in (("neox", tiny_neox_dir), ("llama", tiny_llama_dir)):
        model = build_encoder(str(folder), max_seq_length=32, attention="bidirectional")
        out = save_encoder(model, tmp_path / name)
        assert json.loads((out / "config.json").read_text())["is_causal"] is False
        here = model.encode(TEXTS, convert_to_numpy=True)
        there = np.array(_fresh_process_encode(out, TEXTS))
        assert np.abs(here - there).max() <= 1e-5, name
        causal = build_encoder(str(folder), max_seq_length=32).encode(TEXTS, convert_to_numpy=True)
        assert np.abs(causal - there).max() > 1e-3, name  # it did not silently load causal


@pytest.mark.parametrize("method, args", [("lora", {"r": 4}), ("peft", {"peft_type": "ia3"})])
def test_bidirectional_survives_adapter_merge(tiny_neox_dir, tmp_path, method, args):
    import torch

    from st_recipe.encoder import build_encoder, save_encoder
    from st_recipe.methods import get_method

    model = build_encoder(str(tiny_neox_dir), max_seq_length=32, attention="bidirectional")
    m = get_method(method, **args)
    m.apply(model)
    with torch.no_grad():  # stand-in for training: nonzero adapter weights
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(0.05)
    m.merge(model)
    out = save_encoder(model, tmp_path / method)
    assert json.loads((out / "config.json").read_text())["is_causal"] is False
    assert _first_token_states(model, [3, 4, 5, 6], [3, 4, 5, 9]) > 1e-4


def test_an_architecture_that_ignores_the_switch_is_refused_in_one_line():
    import torch
    from transformers import AutoConfig, AutoModel

    from st_recipe.encoder import make_bidirectional
    from tests.model_configs import TINY

    # Gemma 3's multimodal wrapper builds its masks from its own config and ignores is_causal on it.
    cfg = dict(TINY["gemma3-nested"])
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    torch.manual_seed(0)
    model = AutoModel.from_config(config)
    with pytest.raises(StRecipeError, match=r"not supported for tiny \(gemma3\): transformers .* ignores "
                                            r"config.is_causal=False .* would load causal") as info:
        make_bidirectional(model, "tiny")
    assert "\n" not in str(info.value)
    assert not hasattr(model.config, "is_causal") or model.config.is_causal is not False  # left as it was


# ------------------------------------------------------------------------------------------ prompts


def test_prompts_are_saved_and_applied_by_name(tiny_neox_dir, tmp_path):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from st_recipe.encoder import build_encoder, save_encoder

    prompts = {"query": "Represent this question for retrieval: ", "document": "Passage: "}
    out = save_encoder(build_encoder(str(tiny_neox_dir), max_seq_length=32, prompts=prompts), tmp_path / "p")
    config = json.loads((out / "config_sentence_transformers.json").read_text())
    assert config["prompts"] == prompts
    model = SentenceTransformer(str(out))
    named = model.encode(TEXTS, prompt_name="query")
    prefixed = model.encode([prompts["query"] + t for t in TEXTS])
    assert np.abs(named - prefixed).max() <= 1e-6
    assert np.abs(named - model.encode(TEXTS)).max() > 1e-4
    there = np.array(_fresh_process_encode(out, TEXTS, prompt_name="query"))
    assert np.abs(named - there).max() <= 1e-5


def test_excluding_the_prompt_from_pooling(tiny_neox_dir, tmp_path):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from st_recipe.encoder import build_encoder, save_encoder

    prompts = {"query": "Represent this question for retrieval: "}
    model = build_encoder(str(tiny_neox_dir), max_seq_length=32, prompts=prompts, include_prompt=False)
    out = save_encoder(model, tmp_path / "x")
    assert json.loads((out / "1_Pooling" / "config.json").read_text())["include_prompt"] is False
    loaded = SentenceTransformer(str(out))
    excluded = loaded.encode(TEXTS, prompt_name="query")
    plain_mean = loaded.encode([prompts["query"] + t for t in TEXTS])  # no prompt_name: every token pooled
    assert np.abs(excluded - plain_mean).max() > 1e-4
    # what it is: the mean of the hidden states after the prompt's tokens
    import torch

    features = loaded.preprocess([TEXTS[0]], prompt=prompts["query"])
    n_prompt = features["prompt_length"]
    with torch.no_grad():
        states = loaded[0](dict(features))["token_embeddings"][0]
    assert np.abs(states[n_prompt:].mean(dim=0).numpy() - excluded[0]).max() <= 1e-5


# ------------------------------------------------------------------------------------------ training


def test_training_with_every_lever_spends_the_budget_and_saves_them(tiny_neox_dir, tmp_path):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from st_recipe.run import read_run
    from st_recipe.training import train

    prompts = {"query": "query: ", "document": "passage: "}
    recipe = Recipe(model=str(tiny_neox_dir), method="full", pairs=640, batch_size=16, learning_rate=1e-3, budget=8e9,
                    max_seq_length=32, attention="bidirectional", prompts=prompts, include_prompt=False,
                    matryoshka_dims=[32, 16, 8])
    result = train(recipe, "builtin", out=tmp_path / "run", quiet=True)
    rec = read_run(result.out)
    assert 0.99 <= rec.flops.spent_fraction <= 1.0, rec.flops
    assert rec.flops.stopped_by == "budget" and rec.steps >= 10
    assert "Matryoshka" in (rec.flops.not_counted or "")
    assert rec.recipe["matryoshka_dims"] == [32, 16, 8] and rec.recipe["prompts"] == prompts
    out = Path(result.out)
    assert json.loads((out / "config.json").read_text())["is_causal"] is False
    assert json.loads((out / "config_sentence_transformers.json").read_text())["prompts"] == prompts
    assert json.loads((out / "1_Pooling" / "config.json").read_text())["include_prompt"] is False
    model = SentenceTransformer(str(out))
    full = model.encode(TEXTS, prompt_name="query")
    small = SentenceTransformer(str(out), truncate_dim=8).encode(TEXTS, prompt_name="query")
    assert small.shape == (3, 8) and np.abs(full[:, :8] - small).max() <= 1e-6
    there = np.array(_fresh_process_encode(out, TEXTS, prompt_name="query"))
    assert np.abs(full - there).max() <= 1e-5

    # the card (publish --dry-run) shows the prompts, Matryoshka truncation and the attention
    from click.testing import CliRunner

    from st_recipe.cli import main

    done = CliRunner().invoke(main, ["publish", str(out), "--repo", "org/levers", "--dry-run", str(tmp_path / "pub"),
                                   "--no-scores"])
    assert done.exit_code == 0, done.output
    card = (tmp_path / "pub" / "README.md").read_text()
    assert 'prompt_name="query"' in card and '`"query: "`' in card and '`"passage: "`' in card
    assert "include_prompt: false" in card
    assert 'truncate_dim=8' in card and "32, 16, 8 dimensions" in card
    assert "Attention is **bidirectional**" in card and "Causal attention." not in card
    assert "| attention | bidirectional | user |" in card


def test_prompts_are_counted_in_the_per_pair_estimate(tiny_neox_dir):
    """The per-pair cost that sizes the schedule includes the prompt tokens the trainer meters."""
    from st_recipe.costing.flops import FlopMeter, profile_model
    from st_recipe.data import load_pairs
    from st_recipe.encoder import build_encoder
    from st_recipe.training.inputs import pair_cost

    pairs = load_pairs("builtin", seed=0)
    long_prompt = "Represent this sentence for searching relevant passages about it: "
    costs = []
    for prompts in ({}, {"query": long_prompt}, {"query": long_prompt, "document": long_prompt}):
        model = build_encoder(str(tiny_neox_dir), max_seq_length=32, prompts=prompts)
        costs.append(pair_cost(model, pairs, FlopMeter(profile_model(model)), 32, 0))
    assert costs[0] < costs[1] < costs[2]


# ------------------------------------------------------------------------------------------ CLI, eval, card


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "st_recipe.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=300)


def test_plan_shows_the_lever_fields():
    out = _cli("plan", "--budget", "1e16")
    assert out.returncode == 0, out.stderr
    for name in ("attention", "prompts", "include_prompt", "matryoshka_dims"):
        assert name in out.stdout
    assert "measured: bidirectional scored" in out.stdout and "quality.md" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["--prompt", "query"], "--prompt must look like NAME=TEXT"),
    (["--prompt", "question=q: "], "unknown prompt name 'question'"),
    (["--prompt", "query=a", "--prompt", "query=b"], "--prompt query given twice"),
    (["--exclude-prompt-from-pooling"], "--exclude-prompt-from-pooling needs a --prompt"),
    (["--matryoshka-dims", "64,64"], "must be distinct"),
    (["--matryoshka-dims", "4096,64"], r"matryoshka dims \[4096\] exceed the model's embedding dimension 512"),
    (["--attention", "sideways"], "Invalid value for '--attention'"),
])
def test_train_lever_flags_fail_in_one_line(tmp_path, args, message):
    import re

    out = _cli("train", "--budget", "1e16", "--model", "random:pythia-70m", "--out", str(tmp_path / "r"), *args)
    assert out.returncode != 0
    assert re.search(message, out.stderr), out.stderr
    assert "Traceback" not in out.stderr


def test_train_flags_set_the_recipe_with_user_provenance():
    from st_recipe.planning.builder import apply_levers
    from st_recipe.planning.planner import plan

    r = apply_levers(plan(1e16), attention="bidirectional", prompts=('query=q: ', 'document=d: '),
                     include_prompt=False, matryoshka_dims="512,256,64")
    assert (r.attention, r.prompts, r.include_prompt, r.matryoshka_dims) == (
        "bidirectional", {"query": "q: ", "document": "d: "}, False, [512, 256, 64])
    assert all(r.provenance[k].source == "user" for k in ("attention", "prompts", "include_prompt", "matryoshka_dims"))


def test_eval_truncate_dim_files_results_apart(tiny_neox_dir, tmp_path):
    from st_recipe.encoder import build_encoder, save_encoder
    from st_recipe.evaluation import evaluate
    from tests.evaluation.helpers import write_sts

    folder = save_encoder(build_encoder(str(tiny_neox_dir), max_seq_length=32), tmp_path / "m")
    sts = write_sts(tmp_path / "tiny-sts.jsonl", header={"score_range": [0, 5]})
    cache = tmp_path / "cache"
    full = evaluate(str(folder), task_files=[str(sts)], cache_dir=cache, progress=False)
    cut = evaluate(str(folder), task_files=[str(sts)], cache_dir=cache, progress=False, truncate_dim=8)
    assert full.ok and cut.ok and cut.truncate_dim == 8 and full.truncate_dim is None
    assert not cut.tasks[0].cached  # not served from the full-size result
    assert cut.tasks[0].main_score != full.tasks[0].main_score
    assert json.loads(Path(cut.summary_path).read_text())["truncate_dim"] == 8
    assert Path(cut.summary_path) != Path(full.summary_path)
    assert "truncated to 8 dims" in cut.format()
    with pytest.raises(StRecipeError, match="--truncate-dim 64 exceeds the model's embedding dimension 32"):
        evaluate(str(folder), task_files=[str(sts)], cache_dir=cache, progress=False, truncate_dim=64)
    out = _cli("eval", str(folder), "--task-file", str(sts), "--truncate-dim", "0")
    assert out.returncode != 0 and "--truncate-dim must be an integer >= 1" in out.stderr


def test_card_shows_prompts_matryoshka_and_attention():
    from st_recipe.planning.recipes import Recipe
    from st_recipe.publishing.card import _levers

    levers = _levers(Recipe(model="m", method="full", pairs=8, attention="bidirectional", prompts={"query": "q: "},
                            include_prompt=False, matryoshka_dims=[64, 32]))
    assert levers == {"bidirectional": True, "prompts": [{"name": "query", "text": '"q: "', "role": "queries (anchors)"}],
                      "include_prompt": False, "matryoshka_dims": [64, 32], "hard_negatives": None}
    import jinja2

    from st_recipe.publishing.card import template_path

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    env.filters["cell"] = lambda v: str(v)
    source = template_path().read_text(encoding="utf-8")
    start, end = source.index("## Usage"), source.index("## Training recipe")
    text = env.from_string(source[start:end]).render(levers=levers, repo_id="org/m", facts={"embed_dim": 64})
    assert 'prompt_name="query"' in text and '`"q: "`' in text
    assert "truncate_dim=32" in text and "64, 32" in text
    assert "include_prompt: false" in text


def test_matryoshka_with_gradcache_spends_the_budget(tiny_neox_dir, tmp_path):
    from st_recipe.run import read_run
    from st_recipe.training import train

    recipe = Recipe(model=str(tiny_neox_dir), method="full", pairs=640, batch_size=16, mini_batch_size=8, budget=1.2e9,
                    max_seq_length=32, matryoshka_dims=[32, 8])
    rec = read_run(train(recipe, "builtin", out=tmp_path / "run", quiet=True).out)
    assert 0.99 <= rec.flops.spent_fraction <= 1.0, rec.flops
    assert "GradCache" in rec.flops.not_counted and "Matryoshka" in rec.flops.not_counted
    assert all(loss == loss for loss in rec.loss.per_step)  # finite (no NaN)


def test_card_reports_scores_at_each_truncated_dimension(tmp_path):
    """`eval --truncate-dim D` files in the run dir become a per-dimension table on the card."""
    import jinja2

    from st_recipe.publishing.card import template_path
    from st_recipe.publishing.pipeline import dim_scores

    for dim, score in ((64, 0.71), (32, 0.65)):
        (tmp_path / f"eval_results_dim{dim}.json").write_text(json.dumps(
            {"truncate_dim": dim, "tasks": [{"task": "STSBenchmark", "main_score": score}]}))
    (tmp_path / "eval_results_dimX.json").write_text("not json")  # ignored, not an error
    assert dim_scores(tmp_path, None) is not None
    scores = dim_scores(tmp_path, {"tasks": [{"task": "STSBenchmark", "main_score": 0.74}]})
    assert scores == {"dims": [64, 32], "rows": [{"task": "STSBenchmark", "full": 0.74, "scores": [0.71, 0.65]}]}
    assert dim_scores(tmp_path / "none", None) is None

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    env.filters["cell"] = lambda v: str(v)
    source = template_path().read_text(encoding="utf-8")
    text = env.from_string(source[source.index("## Usage"):source.index("## Training recipe")]).render(
        levers={"matryoshka_dims": [128, 64, 32], "prompts": []}, repo_id="org/m", facts={"embed_dim": 128},
        dim_scores=scores)
    assert "| task | full | 64 | 32 |" in text
    assert "| STSBenchmark | 0.7400 | 0.7100 | 0.6500 |" in text
