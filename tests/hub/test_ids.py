"""One owner of "is this a Hub repo id?": models, datasets (with config and split) and repos to create."""

from __future__ import annotations

import pytest

from st_recipe.errors import StRecipeError
from st_recipe.hub.ids import is_repo_id, parse_dataset_spec, split_revision, validate_repo_id


def test_dataset_spec_forms() -> None:
    match = parse_dataset_spec
    assert match("org/name")["repo"] == "org/name"
    assert match("org/name:cfg")["config"] == "cfg"
    assert match("org/name:cfg:train[:10%]")["split"] == "train[:10%]"
    assert match("name") is None and match("a/b/c") is None and match("org/name\n") is None


@pytest.mark.parametrize("text, ok", [
    ("EleutherAI/pythia-410m", True), ("org/name.v2", True), ("a/b", True),
    ("./org/name", False), ("~/models", False), ("/abs/path", False), ("org/name/extra", False),
    ("name", False), ("org/", False), ("-org/name", False), ("org/name\n", False), (None, False),
])
def test_repo_id_shape(text, ok) -> None:
    assert is_repo_id(text) is ok


def test_revision_split() -> None:
    assert split_revision("org/name@v1.0") == ("org/name", "v1.0")
    assert split_revision("org/name") == ("org/name", None)


def test_every_caller_asks_the_same_owner() -> None:
    """The catalogue, the data reader, eval's model loader and publishing agree on what a repo id is."""
    from st_recipe.data.sources import classify_source, recorded_hub_id
    from st_recipe.models.args import parse_model_spec

    assert parse_model_spec("someorg/some-model").kind == "hub"
    assert classify_source("someorg/some-data:cfg").repo == "someorg/some-data"
    assert recorded_hub_id("someorg/some-data") == "someorg/some-data"
    assert validate_repo_id("someorg/some-model") == "someorg/some-model"
    with pytest.raises(StRecipeError, match="Hub address"):
        validate_repo_id("datasets/x")
