"""recipes/defaults.yaml read once into the typed Defaults: every key read, bad keys named in one line."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from st_recipe import StRecipeError
from st_recipe.planning.defaults import Defaults, Sourced, load_defaults, read_defaults
from st_recipe.planning.recipes import registry_dir

SHIPPED = registry_dir() / "defaults.yaml"


def _raw() -> dict:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def _write(tmp_path, data) -> object:
    path = tmp_path / "defaults.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _error(tmp_path, data) -> str:
    with pytest.raises(StRecipeError) as info:
        read_defaults(_write(tmp_path, data))
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "defaults.yaml") in message
    return message


def test_the_shipped_file_loads_into_the_typed_object():
    d = load_defaults()
    assert isinstance(d, Defaults) and load_defaults() is d  # built once, cached
    assert d.budgets == (1.5e15, 6e15, 2.4e16, 9.6e16, 3.84e17, 1.536e18)
    assert d.method_below.value == "full" and d.method_above.value == "lora"
    assert d.lora.r == Sourced(32, "paper", d.lora.r.note) and d.lora.alpha.value == 8 and d.lora.dropout.value == 0.0
    assert d.batch_size.value == 1024 and d.max_seq_length.value == 75 and d.temperature.value == 0.025
    assert isinstance(d.tokens_per_pair.value, float) and isinstance(d.lr_divisor.value, float)
    assert d.seed.note == "fixed default seed for reproducibility"  # the file's ``rule`` is the note
    assert d.unknown_pretrain_lr.scale is not None and d.unknown_pretrain_lr.scale.source == "measured"
    assert d.memory.freeze_fractions == (0.5, 0.25) and d.memory.mini_batch_sizes[0] == 256
    assert d.matryoshka_dims.value is None and dict(d.prompts.value) == {}
    assert d.method_settings("lora") == {"r": 32, "alpha": 8, "dropout": 0.0}
    assert d.method_settings("freeze") == {"fraction": 0.5} and d.method_settings("full") == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.batch_size = d.seed  # type: ignore[misc]


def _leaves(data, key=""):
    if isinstance(data, dict) and data:
        for k, v in data.items():
            yield from _leaves(v, f"{key}.{k}" if key else k)
    else:
        yield key, data


def _read(obj, key):
    for part in key.split("."):
        if isinstance(obj, Sourced) and part == "rule":
            part = "note"  # a sourced value's ``rule`` is read as its note
        obj = getattr(obj, part)
    return obj


def test_every_key_of_the_shipped_file_is_read():
    d = load_defaults()
    leaves = dict(_leaves(_raw()))
    assert len(leaves) > 60
    for key, value in leaves.items():
        got = _read(d, key)
        got = list(got) if isinstance(got, tuple) else dict(got) if key == "prompts.value" else got
        assert got == value, key


def test_an_unknown_key_is_refused_not_ignored(tmp_path):
    data = _raw()
    data["lora"]["targets"] = {"value": ["q_proj"], "source": "paper"}
    assert "'lora.targets' is not a known key here" in _error(tmp_path, data)
    data = _raw()
    data["batch_size"]["comment"] = "x"
    assert "'batch_size.comment'" in _error(tmp_path, data)


@pytest.mark.parametrize("key", ["budgets", "lora.r", "lora.r.value", "seed.source", "memory.freeze_fractions",
                                 "unknown_pretrain_lr.rule"])
def test_a_missing_key_is_named(tmp_path, key):
    data = _raw()
    *parents, last = key.split(".")
    node = data
    for p in parents:
        node = node[p]
    del node[last]
    assert f"{key!r} is missing" in _error(tmp_path, data)


@pytest.mark.parametrize("key, value, want", [
    ("lora.r.value", "thirty-two", "must be an integer"),
    ("batch_size.value", True, "must be an integer"),
    ("temperature.value", "1e-2", "must be a number"),
    ("budgets", 1.5e15, "must be a list"),
    ("memory.mini_batch_sizes", [256, "x"], "'memory.mini_batch_sizes[1]' must be an integer"),
    ("include_prompt.value", "yes", "must be true or false"),
    ("lora.alpha.value", "8", "must be an integer or a number"),
    ("schedule.source", "folklore", "must be one of paper, derived"),
    ("prompts.value", ["query: "], "must be a mapping"),
    ("model_size", "largest", "must be a mapping of keys"),
])
def test_a_wrongly_typed_value_is_named(tmp_path, key, value, want):
    data = _raw()
    *parents, last = key.split(".")
    node = data
    for p in parents:
        node = node[p]
    node[last] = value
    message = _error(tmp_path, data)
    assert want in message and key.split("[")[0] in message


def test_the_file_itself_must_fit(tmp_path):
    assert "must be a mapping of keys" in _error(tmp_path, [1, 2])
    data = _raw()
    data["version"] = 2
    assert "'version' must be 1" in _error(tmp_path, data)
    data = _raw()
    data["memory"]["freeze_fractions"] = []
    assert "'memory.freeze_fractions' must list at least one fraction" in _error(tmp_path, data)
    data = _raw()
    data["seed"]["note"] = "also a note"
    assert "'seed' gives both 'note' and 'rule'" in _error(tmp_path, data)


def test_optional_fields_may_be_left_out(tmp_path):
    data = _raw()
    del data["unknown_pretrain_lr"]["scale"]
    del data["lora"]["r"]["note"]
    d = read_defaults(_write(tmp_path, data))
    assert d.unknown_pretrain_lr.scale is None and d.lora.r.note == ""


def _sourced(obj, key=""):
    if isinstance(obj, Sourced):
        yield key, obj
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from _sourced(getattr(obj, f.name), f"{key}.{f.name}" if key else f.name)


def test_every_measured_default_cites_a_committed_benchmark_table():
    """A ``measured`` default is only as good as the table behind it: its note names a results file that exists."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    measured = {k: v for k, v in _sourced(load_defaults()) if v.source == "measured"}
    assert measured, "the frontier's measured defaults are gone"
    for key, value in measured.items():
        cited = re.findall(r"bench/results/[\w.-]+\.md", value.note or "")
        assert cited, f"{key}: a measured default must cite its benchmark table"
        for path in cited:
            assert (repo / path).is_file(), f"{key} cites {path}, which is not in the repo"
