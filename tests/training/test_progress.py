"""Progress without a terminal: readable rates at any speed, and each line (the final one included) printed once."""

from __future__ import annotations

import time
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


def _run_steps(callback, state, steps, seconds_ago):
    """Feed the callback ``steps`` logged steps of 2 pairs each, as if training began ``seconds_ago``."""
    callback.on_train_begin(None, None, None)
    callback.t0 -= seconds_ago
    for step in range(1, steps + 1):
        state.pairs += 2
        state.flops += 10.0
        callback.on_log(None, SimpleNamespace(global_step=step), None, logs={"loss": 1.0 / step})


def _lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("training:")]


@pytest.fixture
def callback_state():
    from transformers import TrainerCallback

    state = BudgetState(budget=30.0)
    return budget_callback(TrainerCallback, state, resume_from=None, quiet=False), state


def test_slow_run_prints_each_step_once_and_a_real_rate(callback_state, capsys, monkeypatch):
    monkeypatch.setattr(trainer, "LOG_INTERVAL_S", 0.0)  # slow steps: every step is due a line
    callback, state = callback_state
    _run_steps(callback, state, 3, seconds_ago=20.0)
    callback.on_train_end(None, SimpleNamespace(global_step=3), None)
    callback.close(3)  # train() closes again after on_train_end: still no repeat
    lines = _lines(capsys)
    assert [line.split(",")[0] for line in lines] == ["training: step 1", "training: step 2", "training: step 3"]
    assert lines[-1].startswith("training: step 3, 100.0% of budget, loss 0.333, 0.3 pairs/s"), lines[-1]


def test_fast_run_prints_the_final_line_once(callback_state, capsys):
    callback, state = callback_state
    _run_steps(callback, state, 3, seconds_ago=0.0)  # all within the report interval: nothing until the end
    callback.close(3)
    lines = _lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("training: step 3, 100.0% of budget"), lines
    assert "0 pairs/s" not in lines[0]


def test_final_line_after_the_budget_stops_a_later_step(callback_state, capsys, monkeypatch):
    # BudgetReached ends training before step 4 runs: close(3) must not repeat step 3's line.
    monkeypatch.setattr(trainer, "LOG_INTERVAL_S", 0.0)
    callback, state = callback_state
    _run_steps(callback, state, 3, seconds_ago=5.0)
    callback.close(3)
    assert [line.split(",")[0] for line in _lines(capsys)] == [f"training: step {i}" for i in (1, 2, 3)]


def test_rate_counts_only_this_sessions_pairs(callback_state, capsys):
    callback, state = callback_state
    state.pairs = 1000  # restored from a checkpoint before this session began
    callback.on_train_begin(None, None, None)
    callback.t0 = time.time() - 10.0
    state.pairs += 4
    state.losses.append(1.0)
    callback.close(1)
    assert "0.4 pairs/s" in _lines(capsys)[0]
