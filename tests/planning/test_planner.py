"""The planner: the paper's rules, constraints, memory caps and bad budgets."""

from __future__ import annotations

import copy
import json

import pytest

from st_recipe import StRecipeError, get_method
from st_recipe.costing.memory import estimate_memory, parse_memory
from st_recipe.models.catalog import CATALOG, get_spec
from st_recipe.planning.planner import paper_grid, plan, write_paper_grid
from st_recipe.planning.recipes import registry_dir

GRID = [1.5e15, 6e15, 2.4e16, 9.6e16, 3.84e17, 1.536e18]


@pytest.mark.parametrize("budget", GRID + [3e15, 1e17, 5e18])
def test_method_and_pairs_follow_the_paper(budget):
    r = plan(budget)
    assert r.method == ("full" if budget < 9.06e16 else "lora")
    spec = get_spec(r.model)
    method = get_method(r.method, **r.method_args)
    n, nt = method.predict_params(spec)
    cost = 6 * n if r.method == "full" else 4 * n + 2 * nt
    expected = budget / (cost * 78)
    assert abs(r.pairs - expected) / expected < 1e-3
    assert r.learning_rate == pytest.approx(spec.pretrain_lr / 10)
    assert (r.batch_size, r.temperature, r.max_seq_length, r.warmup_ratio, r.schedule) == (1024, 0.025, 75, 0.1, "cosine")
    if r.method == "lora":
        assert (r.method_args["r"], r.method_args["alpha"]) == (32, 8)


def test_model_size_grows_with_budget_and_follows_the_written_rule():
    sizes = [get_spec(plan(b).model).n_params for b in GRID]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    r = plan(2.4e16)
    assert r.provenance["model"].source == "heuristic" and "20" in r.provenance["model"].note
    assert r.pairs * 78 / get_spec(r.model).n_params >= 20


def test_constraints_replan_the_rest():
    r = plan(1e17, method="freeze", method_args={"fraction": 0.25}, model="pythia-410m")
    assert (r.model, r.method, r.method_args["fraction"]) == ("pythia-410m", "freeze", 0.25)
    assert r.provenance["model"].source == r.provenance["method"].source == r.provenance["method_args"].source == "user"
    assert r.learning_rate == pytest.approx(3e-5)
    assert plan(1e15, method="lora").method == "lora"


def test_memory_cap_picks_what_fits():
    uncapped = plan(1.536e18)
    capped = plan(1.536e18, max_memory="8GB")
    assert capped.mini_batch_size is not None or capped.method == "freeze" or capped.model != uncapped.model
    spec = get_spec(capped.model)
    est = estimate_memory(spec, get_method(capped.method, **capped.method_args), batch_size=capped.batch_size,
                          max_seq_length=capped.max_seq_length, mini_batch_size=capped.mini_batch_size)
    assert est.total <= parse_memory("8GB")
    assert capped.provenance["mini_batch_size"].source == "heuristic"


def test_block_freezing_when_the_method_does_not_fit():
    # Full fine-tuning of pythia-410m needs ~5 GiB of weights+grads+Adam; a 4 GiB cap forces freezing.
    r = plan(1e16, max_memory="4GB", model="pythia-410m")
    assert r.method == "freeze"
    assert "block freezing" in r.provenance["method"].note


def test_a_cap_nothing_fits_under_names_the_smallest_need():
    with pytest.raises(StRecipeError, match=r"nothing fits under 1\.0 MiB: the smallest option needs"):
        plan(1e17, max_memory="1MB")


@pytest.mark.parametrize("budget, needle", [
    ("abc", "number"), (-1, "positive"), (0, "positive"), (float("nan"), "finite"), (float("inf"), "finite"),
    (1e9, "less than one batch of 1024 pairs; the minimum is 5.702e11"),
])
def test_bad_budgets(budget, needle):
    with pytest.raises(StRecipeError, match=needle):
        plan(budget)


@pytest.mark.parametrize("text, expected", [("24GB", 24 * 2**30), ("80GiB", 80 * 2**30), ("512MB", 512 * 2**20), (1000, 1000)])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("bad", ["12XB", "-3GB", "GB", "0"])
def test_bad_memory(bad):
    with pytest.raises(StRecipeError):
        parse_memory(bad)


def test_registry_file_is_what_the_planner_produces(tmp_path):
    """recipes/paper-grid.yaml stays in sync with defaults.yaml and the planner's rules."""
    write_paper_grid(tmp_path / "grid.yaml")
    assert (tmp_path / "grid.yaml").read_text() == (registry_dir() / "paper-grid.yaml").read_text()
    assert list(paper_grid()) == [f"paper-{n}" for n in ("1.5e15", "6e15", "2.4e16", "9.6e16", "3.84e17", "1.536e18")]


@pytest.mark.parametrize("name, args", [("full", {}), ("freeze", {"fraction": 0.5}), ("freeze", {"blocks": 2}), ("bias", {}),
                                        ("lora", {}), ("lora", {"r": 8, "use_dora": True}), ("propulsion", {})])
def test_predicted_counts_equal_the_applied_counts(name, args):
    model = _base_14m()
    method = get_method(name, **args)
    report = method.apply(copy.deepcopy(model))
    assert method.predict_params(CATALOG["pythia-14m"]) == (report.n_params, report.n_trainable)


_CACHE = {}


def _base_14m():
    from st_recipe import build_encoder

    if "m" not in _CACHE:
        _CACHE["m"] = build_encoder("random:pythia-14m")
    return _CACHE["m"]


# ---- several devices: the memory check assumes FSDP full shard / ZeRO-3 over all of them


def test_pythia_12b_full_fine_tuning_needs_sharding():
    # Below the paper's crossover full fine-tuning is the method; pythia-12b's weights, gradients and Adam state
    # alone (16 bytes per parameter) are far over one 80 GB GPU.
    with pytest.raises(StRecipeError, match=r"nothing fits under 80\.0 GiB"):
        plan(5e16, model="pythia-12b", method="full", max_memory="80GB")
    r = plan(5e16, model="pythia-12b", max_memory="80GB", gpus=8)
    assert (r.model, r.method) == ("pythia-12b", "full")
    assert r.provenance["method"].source == "paper"
    assert r.mini_batch_size is not None and r.mini_batch_size < r.batch_size // 8
    note = r.provenance["batch_size"].note
    assert "FSDP full shard / DeepSpeed ZeRO-3 over the 8 devices" in note and "128 pairs on each of 8" in note
    assert "per device" in r.provenance["mini_batch_size"].note
    est = estimate_memory(get_spec("pythia-12b"), get_method("full"), batch_size=1024, max_seq_length=75,
                          mini_batch_size=r.mini_batch_size, devices=8)
    assert est.total <= parse_memory("80GB")


def test_nodes_multiply_the_devices():
    # 2 nodes of 4 GPUs plan exactly as 8 GPUs.
    a = plan(5e16, model="pythia-12b", max_memory="80GB", gpus=4, nodes=2)
    b = plan(5e16, model="pythia-12b", max_memory="80GB", gpus=8)
    assert a.to_dict() == b.to_dict()


def test_one_device_plans_are_unchanged():
    assert plan(1e17, max_memory="24GB").to_dict() == plan(1e17, max_memory="24GB", gpus=1, nodes=1).to_dict()


@pytest.mark.parametrize("kw, needle", [
    ({"gpus": 0}, "--gpus must be an integer >= 1"), ({"nodes": -1}, "--nodes must be an integer >= 1"),
    ({"gpus": 3}, "batch size 1024 is not divisible by the 3 devices"),
])
def test_bad_device_counts(kw, needle):
    with pytest.raises(StRecipeError, match=needle):
        plan(5e16, max_memory="80GB", **kw)


def test_plan_cli_gpus_and_nodes_stay_torch_free():
    import subprocess
    import sys

    code = ("import sys; from click.testing import CliRunner; from st_recipe.cli import main; "
            "r = CliRunner().invoke(main, ['plan', '--budget', '5e16', '--model', 'pythia-12b', '--max-memory', "
            "'80GB', '--gpus', '4', '--nodes', '2', '--json']); print(r.output); "
            "assert r.exit_code == 0, r.output; assert 'torch' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    import json

    recipe = json.loads(proc.stdout)
    assert recipe["method"] == "full" and recipe["mini_batch_size"]
    assert "over the 8 devices" in recipe["provenance"]["batch_size"]["note"]


def test_unknown_pretraining_lr_follows_the_written_rule_and_its_measured_scale(tmp_path, monkeypatch):
    """A decoder whose pretraining LR is unknown borrows the nearest Pythia's LR / 10, times the scale
    recipes/defaults.yaml gives (provenance and note say which, and where it was measured)."""
    import dataclasses
    import math

    from st_recipe.models.catalog import CATALOG
    from st_recipe.models.shapes import resolve_shape
    from st_recipe.planning import planner
    from st_recipe.planning.defaults import Sourced
    from tests.model_configs import TINY

    folder = tmp_path / "llama-like"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY["llama"]))
    spec = resolve_shape(str(folder))
    nearest = min(CATALOG.values(), key=lambda c: abs(math.log(c.n_params / max(1, spec.n_params))))
    defaults = planner.load_defaults()
    scale = defaults.unknown_pretrain_lr.scale.value if defaults.unknown_pretrain_lr.scale is not None else 1
    lr, prov = planner.learning_rate_for(spec)
    assert lr == pytest.approx(nearest.pretrain_lr / 10 * scale) and nearest.name in prov.note

    rule = dataclasses.replace(defaults.unknown_pretrain_lr, scale=Sourced(3.0, "measured", "see bench/results/x.md"))
    changed = dataclasses.replace(defaults, unknown_pretrain_lr=rule)
    monkeypatch.setattr(planner, "load_defaults", lambda: changed)
    lr3, prov3 = planner.learning_rate_for(spec)
    assert lr3 == pytest.approx(nearest.pretrain_lr / 10 * 3)
    assert prov3.source == "measured" and "× 3" in prov3.note and "bench/results/x.md" in prov3.note
