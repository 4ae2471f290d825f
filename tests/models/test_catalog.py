"""The built-in catalogue: shapes, parameter counts, model-spec parsing."""

from __future__ import annotations

import pytest

from st_recipe import StRecipeError
from st_recipe.models.args import parse_model_spec
from st_recipe.models.catalog import CATALOG, build_random_model, get_spec

PAPER_SIZES = ["14m", "31m", "70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"]


def test_catalogue_has_every_pythia_size_with_its_lr():
    assert [s.removeprefix("pythia-") for s in CATALOG] == PAPER_SIZES
    assert get_spec("pythia-410m").pretrain_lr == 3e-4
    assert get_spec("pythia-410m").finetune_lr == pytest.approx(3e-5)
    assert get_spec("EleutherAI/pythia-1.4b").hub_id == "EleutherAI/pythia-1.4b"
    assert {s.vocab_size for s in CATALOG.values()} >= {50304}


@pytest.mark.parametrize("name", list(CATALOG))
def test_non_embedding_count_matches_formula_on_meta_device(name):
    """Counts come from a real GPTNeoXModel built without allocating memory."""
    import torch
    from transformers import GPTNeoXModel

    spec = CATALOG[name]
    with torch.device("meta"):
        model = GPTNeoXModel(spec.hf_config())
    counted = sum(p.numel() for n, p in model.named_parameters() if "emb" not in n)
    h, layers = spec.hidden_size, spec.num_layers
    assert counted == layers * (12 * h * h + 13 * h) + 2 * h == spec.n_params
    assert model.config.num_attention_heads == spec.num_heads
    assert model.config.intermediate_size == spec.intermediate_size


def test_parse_model_spec_kinds(tmp_path):
    assert parse_model_spec("random:pythia-14m").is_random
    assert parse_model_spec("pythia-70m").load_id == "EleutherAI/pythia-70m"
    assert parse_model_spec("org/some-model").kind == "hub"
    assert parse_model_spec(str(tmp_path)).kind == "local"
    assert "randomly initialised" in parse_model_spec("random:pythia-14m").display


@pytest.mark.parametrize(
    "bad, needle",
    [
        ("random:pythia-15m", "pythia-14m"),
        ("pythia-999m", "unknown"),
        ("./no/such/folder", "does not exist"),
        ("", "non-empty"),
    ],
)
def test_bad_model_specs_are_one_line_errors(bad, needle):
    with pytest.raises(StRecipeError) as info:
        parse_model_spec(bad)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_random_model_has_catalogue_shape_and_offline_tokenizer():
    model, tok = build_random_model(get_spec("pythia-14m"), seed=3)
    assert model.config.hidden_size == 128 and model.config.num_hidden_layers == 6
    assert tok.pad_token is None and tok.eos_token == "<|endoftext|>"
    assert tok("Hello world")["input_ids"] == [15496, 995]
    again, _ = build_random_model(get_spec("pythia-14m"), seed=3)
    assert all((a == b).all() for a, b in zip(model.parameters(), again.parameters()))
