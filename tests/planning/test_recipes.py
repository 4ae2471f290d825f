"""Recipe: validation, provenance on every field, YAML/JSON round trips, the registry."""

from __future__ import annotations

import pytest

from st_recipe import StRecipeError
from st_recipe.planning.defaults import load_defaults
from st_recipe.planning.recipes import Recipe, get_recipe, list_recipes
from st_recipe.provenance import SOURCES, Provenance


def _recipe(**kw):
    base = dict(model="pythia-70m", method="lora", pairs=5000, method_args={"r": 64}, budget=1e16)
    base.update(kw)
    return Recipe(**base)


def test_every_field_has_provenance_and_unset_means_user():
    r = _recipe(provenance={"model": Provenance("heuristic", "rule")})
    assert set(r.provenance) == set(Recipe.field_names())
    assert r.provenance["model"].source == "heuristic" and r.provenance["pairs"].source == "user"
    assert r.tokens == 5000 * 78 and r.steps == 5


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip(tmp_path, suffix):
    r = _recipe(provenance={"model": Provenance("paper", "x")})
    path = r.save(tmp_path / f"r{suffix}")
    again = Recipe.load(path)
    assert again.to_dict() == r.to_dict()


def test_numbers_written_the_yaml_1_1_way_are_accepted(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model: pythia-14m\nmethod: full\npairs: 2048\nbudget: 1.5e15\nlearning_rate: 1e-3\n")
    r = Recipe.load(path)
    assert r.budget == 1.5e15 and r.learning_rate == 1e-3


@pytest.mark.parametrize(
    "text, needle",
    [
        ("model: pythia-14m\nmethod: full\npairs: 10\nbatchsize: 4\n", "unknown recipe field(s) batchsize"),
        ("model: pythia-14m\nmethod: full\n", "missing required field(s) pairs"),
        ("model: pythia-14m\nmethod: nope\npairs: 10\n", "unknown method"),
        ("model: pythia-14m\nmethod: lora\nmethod_args: {r: 0}\npairs: 10\n", "rank r"),
        ("model: pythia-14m\nmethod: full\npairs: 10\ntemperature: -1\n", "temperature"),
        ("model: pythia-14m\nmethod: full\npairs: 10\nprovenance: {pairs: {source: guessed}}\n", "provenance source"),
        ("model: [unclosed\n", "malformed (line"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_bad_recipe_files(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(StRecipeError) as info:
        Recipe.load(path)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(StRecipeError, match="does not exist"):
        Recipe.load(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("model: caf\xe9\n".encode("latin-1"))
    with pytest.raises(StRecipeError, match="not UTF-8"):
        Recipe.load(bad)


def test_replace_marks_changed_fields():
    r = _recipe().replace(source="user", batch_size=64)
    assert r.batch_size == 64 and r.provenance["batch_size"].source == "user"


def test_registry_holds_the_paper_grid_with_paper_provenance():
    recipes = list_recipes()
    assert [n for n in recipes if n.startswith("paper-")] == [
        "paper-1.5e15", "paper-6e15", "paper-2.4e16", "paper-9.6e16", "paper-3.84e17", "paper-1.536e18"]
    for name, (_path, r) in recipes.items():
        if not name.startswith("paper-"):
            continue
        assert r.method == ("full" if r.budget < 9.06e16 else "lora")
        assert r.batch_size == 1024 and r.temperature == 0.025 and r.max_seq_length == 75
        assert r.provenance["model"].source == "heuristic"  # never presented as the paper's
        assert r.provenance["temperature"].source == "paper"
        assert all(p.source in SOURCES for p in r.provenance.values())
    with pytest.raises(StRecipeError, match="did you mean"):
        get_recipe("paper-1.5e16")


def test_defaults_write_down_every_heuristic_rule():
    d = load_defaults()
    assert d.model_size.source == "heuristic" and d.model_size.rule
    assert d.memory.source == "heuristic" and d.memory.rule
    assert d.method_crossover.value == 9.06e16
