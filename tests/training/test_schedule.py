"""The LR schedule: cosine, linear and constant train as the recipe says, checked against the recorded per-step LRs."""

from __future__ import annotations

import math

import pytest

from st_recipe import StRecipeError
from st_recipe.planning.recipes import Recipe
from st_recipe.run import RunRecord, read_run
from st_recipe.training import train
from st_recipe.training.trainer import BudgetState, lr_schedule

PEAK = 1e-3


def _expected(schedule: str, step: int, warmup: int, planned: int) -> float:
    """The schedule's LR at ``step``, written out independently of the trainer's code."""
    if step < warmup:
        return PEAK * (step + 1) / warmup
    if schedule == "constant":
        return PEAK
    if step >= planned:
        return 0.0
    progress = (step - warmup) / (planned - warmup)
    return PEAK * (1 - progress) if schedule == "linear" else PEAK * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant"])
def test_recorded_lrs_follow_the_schedule(tiny_neox_dir, tmp_path, schedule):
    recipe = Recipe(model=str(tiny_neox_dir), method="full", pairs=640, batch_size=16, learning_rate=PEAK,
                    budget=2e9, max_seq_length=32, schedule=schedule, warmup_ratio=0.2)
    rec = read_run(train(recipe, "builtin", out=tmp_path / "run", quiet=True).out)
    lrs, planned = rec.loss.lr, rec.planned_steps
    warmup = math.ceil(0.2 * planned)
    assert rec.recipe["schedule"] == schedule
    assert len(lrs) == len(rec.loss.per_step) == rec.steps >= 8 and warmup >= 2
    assert lrs == pytest.approx([_expected(schedule, i, warmup, planned) for i in range(rec.steps)], rel=1e-6, abs=1e-12)
    assert max(lrs) == pytest.approx(PEAK)
    after = lrs[warmup:planned]
    if schedule == "constant":
        assert after == pytest.approx([PEAK] * len(after))
    elif schedule == "linear":
        # Equal decrements that reach 0 one step after the plan's last step.
        steps = [a - b for a, b in zip(after, after[1:])]
        assert steps == pytest.approx([PEAK / (planned - warmup)] * len(steps))
        assert after[-1] - steps[0] == pytest.approx(0.0, abs=1e-12)


def test_schedules_differ_after_warmup():
    cos, lin, const = (lr_schedule(2, 10, s) for s in ("cosine", "linear", "constant"))
    assert [f(0) for f in (cos, lin, const)] == [0.5, 0.5, 0.5]
    assert cos(6) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5))) and lin(6) == pytest.approx(0.5)
    assert const(6) == const(50) == 1.0 and cos(10) == lin(10) == 0.0


def test_unknown_schedule_is_refused():
    with pytest.raises(StRecipeError, match="schedule"):
        lr_schedule(1, 10, "step")


def test_checkpoint_state_keeps_the_lrs_and_reads_older_ones():
    state = BudgetState(budget=1.0, losses=[2.0, 1.5], lrs=[1e-4, 2e-4])
    again = BudgetState(budget=1.0)
    again.restore(state.saved())
    assert again.lrs == [1e-4, 2e-4] and again.losses == [2.0, 1.5]
    older = {k: v for k, v in state.saved().items() if k != "lrs"}
    again.restore(older)
    assert again.lrs == [] and again.losses == [2.0, 1.5]


def test_a_record_without_lrs_still_reads():
    old = {"format": 2, "recipe": {"model": "m"}, "loss": {"final": 1.0, "per_step": [2.0, 1.0]}}
    rec = RunRecord.from_dict(old)
    assert rec.loss.per_step == [2.0, 1.0] and rec.loss.lr == []
