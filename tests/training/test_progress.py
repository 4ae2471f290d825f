"""Progress without a terminal: readable rates at any speed, and each line (the final one included) printed once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from st_recipe.training import trainer
from st_recipe.training.trainer import BudgetState, budget_callback, format_rate


@pytest.mark.parametrize("pairs, seconds, text", [
    (12345, 10, "1234 pairs/s"),
    (425, 10, "42.5 pairs/s"),
    (21, 10, "2.1 pairs/s"),
    (4.2, 10, "0.42 pairs/s"),
    (1, 10, "0.1 pairs/s"),
    (1, 12.5, "12.5 s/pair"),
    (3, 1000, "333 s/pair"),
    (0, 10, "0 pairs/s"),
    (5, 0, "0 pairs/s"),
])
def test_rates_keep_their_significant_digits(pairs, seconds, text):
    assert format_rate(pairs, seconds) == text


@pytest.fixture
def clock(monkeypatch):
    """The progress code's clock, moved by hand (a loaded machine cannot change the rates these tests expect)."""
    now = [1000.0]
    monkeypatch.setattr(trainer, "time", SimpleNamespace(time=lambda: now[0]))
    return now


@pytest.fixture
def callback_state():
    from transformers import TrainerCallback

    state = BudgetState(budget=30.0)
    return budget_callback(TrainerCallback, state, resume_from=None, quiet=False), state


def _run_steps(callback, state, clock, steps, step_s, pairs=2):
    """Feed the callback ``steps`` logged steps of ``pairs`` pairs, each taking ``step_s`` seconds."""
    callback.on_train_begin(None, None, None)
    for step in range(1, steps + 1):
        clock[0] += step_s
        state.pairs += pairs
        state.flops += 10.0
        callback.on_log(None, SimpleNamespace(global_step=step), None, logs={"loss": 1.0 / step})


def _lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("training:")]


def test_slow_run_prints_each_step_once_and_a_real_rate(callback_state, clock, capsys):
    callback, state = callback_state
    _run_steps(callback, state, clock, 3, step_s=40.0)  # slower than the report interval: every step prints
    callback.on_train_end(None, SimpleNamespace(global_step=3), None)
    callback.close(3)  # train() closes again after on_train_end: still no repeat
    lines = _lines(capsys)
    assert [line.split(",")[0] for line in lines] == ["training: step 1", "training: step 2", "training: step 3"]
    assert lines[-1] == "training: step 3, 100.0% of budget, loss 0.333, 20 s/pair"


def test_fast_run_prints_the_final_line_once(callback_state, clock, capsys):
    callback, state = callback_state
    _run_steps(callback, state, clock, 3, step_s=1.0)  # all within the report interval: nothing until the end
    callback.on_train_end(None, SimpleNamespace(global_step=3), None)
    callback.close(3)
    assert _lines(capsys) == ["training: step 3, 100.0% of budget, loss 0.333, 2 pairs/s"]


def test_final_line_after_the_budget_stops_a_later_step(callback_state, clock, capsys):
    # BudgetReached ends training before step 4 runs (no on_train_end): close(3) must not repeat step 3's line.
    callback, state = callback_state
    _run_steps(callback, state, clock, 3, step_s=40.0)
    callback.close(3)
    assert [line.split(",")[0] for line in _lines(capsys)] == [f"training: step {i}" for i in (1, 2, 3)]


def test_rate_under_one_pair_per_second_and_only_this_sessions_pairs(callback_state, clock, capsys):
    callback, state = callback_state
    state.pairs = 1000  # restored from a checkpoint before this session began
    _run_steps(callback, state, clock, 1, step_s=10.0, pairs=4)
    callback.close(1)
    assert _lines(capsys) == ["training: step 1, 33.3% of budget, loss 1.000, 0.4 pairs/s"]
