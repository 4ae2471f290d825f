"""build_recipe: a registry recipe with another --model is re-planned for that model, and says so."""

from __future__ import annotations

from st_recipe.planning.builder import build_recipe
from st_recipe.planning.recipes import get_recipe


def test_model_override_rederives_pairs_and_learning_rate():
    base = get_recipe("paper-2.4e16")
    assert base.model != "pythia-410m"
    r = build_recipe(recipe="paper-2.4e16", model="pythia-410m")
    assert r.model == "pythia-410m" and r.provenance["model"].source == "user"
    assert r.learning_rate == 3e-5 and "pythia-410m" in r.provenance["learning_rate"].note
    assert r.pairs < base.pairs and "pythia-410m" in r.provenance["pairs"].note
    assert base.model not in r.provenance["pairs"].note and base.model not in r.provenance["learning_rate"].note
    assert r.budget == base.budget and r.method == base.method


def test_model_of_unknown_shape_marks_what_is_carried_over(tmp_path):
    folder = tmp_path / "some-decoder"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "mystery"}')
    base = get_recipe("paper-2.4e16")
    r = build_recipe(recipe="paper-2.4e16", model=str(folder))
    assert r.provenance["learning_rate"].source == "heuristic" and r.learning_rate == 1e-4
    note = r.provenance["pairs"].note
    assert r.pairs == base.pairs and "carried over" in note and base.model in note and str(folder) in note


def test_budget_override_rederives_pairs_for_the_same_model():
    base = get_recipe("paper-2.4e16")
    r = build_recipe(recipe="paper-2.4e16", budget="4.8e16")
    assert abs(r.pairs / base.pairs - 2) < 1e-3 and r.provenance["pairs"].source == "derived"
    assert r.learning_rate == base.learning_rate and r.provenance["budget"].source == "user"


def test_temperature_is_a_user_override_with_its_provenance():
    """``--temperature``: sentence-transformers' MNRL default (scale 20) is τ 0.05; the paper's is 0.025."""
    planned = build_recipe(budget="1e16")
    r = build_recipe(budget="1e16", temperature=0.05)
    assert planned.temperature == 0.025 and planned.provenance["temperature"].source == "paper"
    assert r.temperature == 0.05 and r.provenance["temperature"].source == "user"
    assert (r.pairs, r.learning_rate, r.method) == (planned.pairs, planned.learning_rate, planned.method)
