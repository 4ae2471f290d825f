"""Fitting: known laws are recovered from synthetic points; frontier, crossovers, plan --fitted."""

from __future__ import annotations

import math

import pytest

from st_recipe import StRecipeError
from st_recipe.planning.scaling import FittedLaw, Point, best_per_budget, fit_loglog, fit_points, plot_frontier

BUDGETS = [1.5e15, 6e15, 2.4e16, 9.6e16, 3.84e17, 1.536e18]


def _law(a: float, b: float, c: float) -> float:
    return 10 ** (a + b * math.log10(c))


def _synthetic() -> list[Point]:
    """full: steeper from a higher start; lora: flatter from lower; crossover at 10**((2.0-1.4)/(0.06-0.02))."""
    pts = []
    for c in BUDGETS:
        pts.append(Point("full", "pythia-70m", c, _law(-0.2, -0.02, c), 18_915_328, 1000))
        pts.append(Point("full", "pythia-160m", c, _law(-0.2, -0.02, c) * 1.05, 85_056_000, 500))  # worse: dropped
        pts.append(Point("lora", "pythia-160m", c, _law(0.5, -0.0625, c), 85_056_000, 1000))
    return pts


def test_fit_recovers_known_parameters():
    f = fit_loglog(BUDGETS, [_law(0.3, -0.05, c) for c in BUDGETS])
    assert f.slope == pytest.approx(-0.05, abs=1e-9) and f.intercept == pytest.approx(0.3, abs=1e-9)
    assert f.r2 == pytest.approx(1.0) and max(abs(r) for r in f.residuals) < 1e-9


def test_noisy_fit_reports_r2_and_residuals():
    noise = [1.01, 0.99, 1.02, 0.98, 1.01, 0.99]
    f = fit_loglog(BUDGETS, [_law(0.3, -0.05, c) * n for c, n in zip(BUDGETS, noise)])
    assert f.slope == pytest.approx(-0.05, abs=5e-3) and 0.8 < f.r2 < 1.0
    assert len(f.residuals) == 6 and max(abs(r) for r in f.residuals) < 0.01


def test_best_per_budget_keeps_the_lowest_loss():
    best = best_per_budget(_synthetic())
    assert all(p.model == "pythia-70m" for p in best["full"])


def test_frontier_and_crossover():
    law = fit_points(_synthetic())
    cross = law.crossovers()
    expected = 10 ** ((0.5 - (-0.2)) / (-0.02 - (-0.0625)))
    assert len(cross) == 1 and cross[0]["budget"] == pytest.approx(expected, rel=1e-6)
    assert (cross[0]["below"], cross[0]["above"]) == ("full", "lora")
    assert law.method_for(expected / 10) == "full" and law.method_for(expected * 10) == "lora"


def test_too_few_points_is_a_clear_error():
    with pytest.raises(StRecipeError, match="at least 2 budgets"):
        fit_points([Point("full", "m", 1e15, 1.0, 10, 10), Point("full", "m2", 1e15, 0.9, 20, 10)])
    with pytest.raises(StRecipeError, match="no finished"):
        fit_points([])


def test_round_trip_and_plan_uses_the_fitted_law(tmp_path):
    import yaml

    from st_recipe.planning.planner import plan

    law = fit_points(_synthetic(), source="synthetic")
    path = tmp_path / "fitted.yaml"
    path.write_text(yaml.safe_dump({"fitted": law.to_dict()}))
    again = FittedLaw.load(path)
    cross = again.crossovers()[0]["budget"]
    low, high = plan(cross / 10, fitted=again), plan(cross * 10, fitted=again)
    assert (low.method, high.method) == ("full", "lora")
    assert low.provenance["method"].source == "fitted" and low.provenance["model"].source == "fitted"
    assert low.model == "pythia-70m"


def test_plot_is_written(tmp_path):
    pts = _synthetic()
    out = plot_frontier(fit_points(pts), pts, tmp_path / "f.png")
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"


def test_plot_refuses_a_file_type_it_cannot_write(tmp_path):
    pts = _synthetic()
    with pytest.raises(StRecipeError, match=r"must end in \.png"):
        plot_frontier(fit_points(pts), pts, tmp_path / "f.yaml")
    assert list(tmp_path.iterdir()) == []
