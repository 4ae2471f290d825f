"""Training with hard negatives: the loss gets them, the meter and planner count them, mining finds real ones."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from st_recipe.data import load_pairs
from st_recipe.planning.recipes import Recipe


@pytest.fixture(scope="module")
def triplets(tmp_path_factory) -> Path:
    """200 built-in pairs, each with a long negative (another pair's positive, three times over)."""
    src = load_pairs("builtin", seed=0, limit=200)
    path = tmp_path_factory.mktemp("hn") / "triplets.jsonl"
    rows = [{"anchor": a, "positive": p, "negative": " ".join([src.positives[(i + 1) % len(src)]] * 3)}
            for i, (a, p) in enumerate(src)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _recipe(model_dir: Path, **kw) -> Recipe:
    base = dict(model=str(model_dir), method="full", pairs=640, batch_size=8, learning_rate=1e-3, budget=4e9,
                max_seq_length=32)
    base.update(kw)
    return Recipe(**base)


def _tokens(tok, texts: list[str], max_len: int = 32) -> list[int]:
    return [len(ids) for ids in tok(texts, truncation=True, max_length=max_len)["input_ids"]]


def test_negatives_train_are_metered_and_the_model_reloads(tiny_neox_dir, triplets, tmp_path):
    from sentence_transformers import SentenceTransformer

    from st_recipe.run import read_run
    from st_recipe.training import train

    with_neg = read_run(train(_recipe(tiny_neox_dir, hard_negatives=1), str(triplets), out=tmp_path / "hn", quiet=True).out)
    plain = read_run(train(_recipe(tiny_neox_dir), str(triplets), out=tmp_path / "plain", quiet=True).out)
    for rec in (with_neg, plain):
        assert 0.99 <= rec.flops.spent_fraction <= 1.0 and rec.flops.stopped_by == "budget"
    assert with_neg.data.hard_negatives == {"per_pair": 1, "source": "data", "pairs_left_out": 0, "mining": None}
    assert plain.data.hard_negatives is None
    # The meter counts the negative's real tokens: tokens per pair match the data's mean over all three texts.
    tok = SentenceTransformer(str(tmp_path / "hn"))[0].tokenizer
    data = load_pairs(str(triplets))
    a, p, n = (_tokens(tok, texts) for texts in (data.anchors, data.positives, [x[0] for x in data.negatives]))
    mean_pair, mean_neg = (sum(a) + sum(p)) / len(a), sum(n) / len(n)
    assert with_neg.tokens_seen / with_neg.pairs_seen == pytest.approx(mean_pair + mean_neg, rel=0.12)
    assert plain.tokens_seen / plain.pairs_seen == pytest.approx(mean_pair, rel=0.12)
    # so the same budget buys fewer pairs
    assert with_neg.pairs_seen < 0.8 * plain.pairs_seen
    assert with_neg.flops.per_pair_estimate > 1.5 * plain.flops.per_pair_estimate
    # the card says how the model was trained
    from click.testing import CliRunner

    from st_recipe.cli import main

    done = CliRunner().invoke(main, ["publish", str(tmp_path / "hn"), "--repo", "org/hn", "--dry-run",
                                     str(tmp_path / "pub"), "--no-scores"])
    assert done.exit_code == 0, done.output
    card = (tmp_path / "pub" / "README.md").read_text()
    assert "Trained with 1 hard negative(s) per pair besides the in-batch negatives, taken from the training data" in card
    assert "| hard_negatives | 1 | user |" in card


def test_the_trainer_feeds_the_negative_column_to_the_loss(tiny_neox_dir, triplets, tmp_path):
    """The dataset the loss reads has anchor, positive, negative_1; its loss differs from the pairs-only loss."""
    import torch

    from st_recipe.costing.flops import FlopMeter, profile_model
    from st_recipe.encoder import build_encoder
    from st_recipe.training.orchestrate import _budget_trainer
    from st_recipe.training.trainer import BudgetState

    data = load_pairs(str(triplets)).with_negatives(1)
    losses = {}
    for k in (0, 1):
        recipe = _recipe(tiny_neox_dir, hard_negatives=k)
        model = build_encoder(recipe.model, max_seq_length=32)
        trainer, _ = _budget_trainer(model, recipe, data, BudgetState(budget=1e12), FlopMeter(profile_model(model)),
                                     tmp_path / f"ck{k}", 10, identity={}, save_steps=None, resume_from=None,
                                     quiet=True, gradient_checkpointing=False)
        columns = trainer.train_dataset.column_names
        assert columns == ["anchor", "positive"] + (["negative_1"] if k else [])
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(8)])
        with torch.no_grad():
            losses[k] = float(trainer.loss(*trainer.collect_features(batch)))
    # More candidates per anchor: the InfoNCE over 8 positives + 8 negatives is larger than over 8 positives.
    assert losses[1] > losses[0]


def test_unused_negatives_are_announced_in_one_line(tiny_neox_dir, triplets, tmp_path, caplog):
    from st_recipe.training import train

    with caplog.at_level(logging.WARNING, logger="st_recipe"):
        train(_recipe(tiny_neox_dir, budget=5e8), str(triplets), out=tmp_path / "r", quiet=True)
    notes = [r.getMessage() for r in caplog.records if "hard negatives" in r.getMessage()]
    assert len(notes) == 1 and "(200 of 200 pairs, up to 1 each)" in notes[0] and "--hard-negatives K" in notes[0]


def test_mining_finds_other_pairs_positives_and_meters_the_encoding(tiny_neox_dir):
    from st_recipe.costing.flops import profile_model
    from st_recipe.data.mining import mine_negatives
    from st_recipe.encoder import build_encoder

    pairs = load_pairs("builtin", seed=0, limit=60)
    model = build_encoder(str(tiny_neox_dir), max_seq_length=32)
    profile = profile_model(model)
    mined, report = mine_negatives(model, pairs, 2, absolute_margin=None, profile=profile)
    assert report.pairs == 60 and report.pairs_with_negatives == 60 == mined.stats.with_negatives
    positives = set(pairs.positives)
    for p, negs in zip(mined.positives, mined.negatives):
        assert len(negs) == 2 and p not in negs and set(negs) <= positives
    texts = sorted(set(pairs.anchors)) + sorted(set(pairs.positives))
    lengths = _tokens(model[0].tokenizer, texts)
    assert report.tokens_encoded == sum(lengths)
    assert report.forward_flops == pytest.approx(sum(profile.forward_flops(t) for t in lengths))


def test_train_mine_negatives_records_the_mining(tiny_neox_dir, tmp_path):
    """--mine-negatives mines the training pairs (not the held-out ones) with the base model, then trains."""
    from st_recipe.run import read_run
    from st_recipe.training import train

    # Each positive repeats its anchor, so even a random model ranks it first and the margin keeps most candidates.
    src = load_pairs("builtin", seed=0, limit=200)
    path = tmp_path / "echo.jsonl"
    path.write_text("".join(json.dumps({"anchor": a, "positive": a + " " + p}) + "\n" for a, p in src), encoding="utf-8")
    rec = read_run(train(_recipe(tiny_neox_dir, hard_negatives=1), str(path), out=tmp_path / "m", quiet=True,
                         mine_negatives=True).out)
    hn = rec.data.hard_negatives
    assert hn["source"] == "mined" and hn["per_pair"] == 1 and hn["mining"]["absolute_margin"] == 0.0
    assert hn["mining"]["pairs"] == rec.data.train_pairs + hn["pairs_left_out"] == 200 - rec.data.heldout_pairs
    assert hn["mining"]["forward_flops"] > 0 and 0.99 <= rec.flops.spent_fraction <= 1.0


def _echo_pairs(path: Path) -> Path:
    src = load_pairs("builtin", seed=0, limit=200)
    path.write_text("".join(json.dumps({"anchor": a, "positive": a + " " + p}) + "\n" for a, p in src), encoding="utf-8")
    return path


def test_mining_in_budget_charges_its_flops_and_trains_on_the_rest(tiny_neox_dir, tmp_path):
    """--mining-in-budget: mining + training land in [0.99, 1.0] of the budget; training alone spends less."""
    from st_recipe.run import read_run
    from st_recipe.training import train

    data = str(_echo_pairs(tmp_path / "echo.jsonl"))
    apart = read_run(train(_recipe(tiny_neox_dir, hard_negatives=1), data, out=tmp_path / "a", quiet=True,
                           mine_negatives=True).out)
    charged = read_run(train(_recipe(tiny_neox_dir, hard_negatives=1), data, out=tmp_path / "c", quiet=True,
                             mine_negatives=True, mining_in_budget=True).out)
    mined = charged.data.hard_negatives["mining"]["forward_flops"]
    assert mined > 0 and apart.flops.mining_charged == 0 and charged.flops.mining_charged == pytest.approx(mined)
    assert charged.flops.budget == apart.flops.budget == 4e9
    assert 0.99 <= (charged.flops.spent + mined) / 4e9 <= 1.0 and 0.99 <= charged.flops.spent_fraction <= 1.0
    assert charged.flops.spent < apart.flops.spent and charged.pairs_seen < apart.pairs_seen


def test_mining_that_costs_the_whole_budget_is_refused(tiny_neox_dir, tmp_path):
    from st_recipe import StRecipeError
    from st_recipe.training import train

    with pytest.raises(StRecipeError, match=r"mining cost .* the whole budget of"):
        train(_recipe(tiny_neox_dir, hard_negatives=1, budget=1e8), str(_echo_pairs(tmp_path / "e.jsonl")),
              out=tmp_path / "m", quiet=True, mine_negatives=True, mining_in_budget=True)
    assert not (tmp_path / "m").exists()


def test_train_refuses_when_mining_leaves_most_pairs_without_negatives(tiny_neox_dir, triplets, tmp_path, monkeypatch):
    """A random model rarely ranks the real positive first: among only its top 2 candidates the margin rejects both
    for most pairs. Training on the few left would drop most of the data, so it refuses in one line, no run."""
    from st_recipe import StRecipeError
    from st_recipe.data import mining
    from st_recipe.training import train

    monkeypatch.setattr(mining, "DEFAULT_CANDIDATES", 1)

    with pytest.raises(StRecipeError, match=r"mining found 1 negative\(s\) for only \d+ of 190 pairs .* --absolute-margin off"):
        train(_recipe(tiny_neox_dir, hard_negatives=1), str(triplets), out=tmp_path / "m", quiet=True, mine_negatives=True)
    assert not (tmp_path / "m").exists()


def test_planner_prices_the_extra_passages():
    from st_recipe.costing.memory import estimate_memory
    from st_recipe.methods import get_method
    from st_recipe.models.shapes import resolve_shape
    from st_recipe.planning.planner import plan, with_hard_negatives

    base, three = plan(1e17, model="pythia-160m"), plan(1e17, model="pythia-160m", hard_negatives=3)
    assert three.tokens_per_pair == base.tokens_per_pair + 3 * 64
    assert three.pairs == pytest.approx(base.pairs * base.tokens_per_pair / three.tokens_per_pair, rel=1e-3)
    assert three.provenance["tokens_per_pair"].source == "derived" and three.provenance["hard_negatives"].source == "user"
    again = with_hard_negatives(base, 3)
    assert (again.hard_negatives, again.tokens_per_pair) == (3, three.tokens_per_pair)
    assert again.pairs == pytest.approx(three.pairs, rel=1e-3)
    spec, full = resolve_shape("pythia-160m"), get_method("full")
    mem = [estimate_memory(spec, full, batch_size=64, max_seq_length=75, hard_negatives=k).activations for k in (0, 1, 3)]
    assert mem[0] < mem[1] < mem[2]


def test_mine_cli_writes_a_file_train_reads(tiny_neox_dir, triplets, tmp_path):
    from click.testing import CliRunner

    from st_recipe.cli import main

    out = tmp_path / "mined.jsonl"
    # Any margin: a random model need not score the pair's own positive highest.
    res = CliRunner().invoke(main, ["mine", str(triplets), "--model", str(tiny_neox_dir), "--num-negatives", "2",
                                    "--absolute-margin", "off", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "mined 2 hard negative(s) for 200 of 200 pairs" in res.output and "--hard-negatives 2" in res.output
    pairs = load_pairs(str(out))
    assert len(pairs.with_negatives(2)) == 200
    original = load_pairs(str(triplets))
    assert _by(pairs) != _by(original)  # mined afresh, not the file's own negatives
    before = out.read_bytes()
    again = CliRunner().invoke(main, ["mine", str(triplets), "--model", str(tiny_neox_dir), "--out", str(out)])
    assert again.exit_code == 2 and "already exists; pass --overwrite" in again.output
    assert out.read_bytes() == before


def _by(pairs) -> dict[str, list[str]]:
    return dict(zip(pairs.anchors, pairs.negatives))


def test_gradcache_takes_the_negatives_too(tiny_neox_dir, triplets, tmp_path):
    """Big batches: CachedMultipleNegativesRankingLoss with the negative column spends the budget like the rest."""
    from st_recipe.run import read_run
    from st_recipe.training import train

    rec = read_run(train(_recipe(tiny_neox_dir, hard_negatives=1, mini_batch_size=4, budget=3e9), str(triplets),
                         out=tmp_path / "gc", quiet=True).out)
    assert 0.99 <= rec.flops.spent_fraction <= 1.0 and rec.recipe["mini_batch_size"] == 4
    from sentence_transformers import SentenceTransformer

    tok = SentenceTransformer(str(tmp_path / "gc"))[0].tokenizer
    data = load_pairs(str(triplets))
    three = sum(sum(_tokens(tok, t)) for t in (data.anchors, data.positives, [n[0] for n in data.negatives])) / len(data)
    assert rec.tokens_seen / rec.pairs_seen == pytest.approx(three, rel=0.12)  # three texts per pair, not two
