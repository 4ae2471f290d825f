"""st_recipe.training.trainer: ranks, the pairs that fit a budget, the LR schedule, the callback and a budgeted run."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from st_recipe import StRecipeError
from st_recipe.costing.flops import CostProfile, FlopMeter
from st_recipe.run import METER_STATE
from st_recipe.training.trainer import (
    SCHEDULES,
    BudgetReached,
    BudgetSettings,
    BudgetState,
    budget_callback,
    is_main,
    lr_schedule,
    pairs_that_fit,
    world_size,
)

# 6 FLOPs per token and no attention term: a sequence of t tokens costs 6t.
LINEAR = CostProfile(forward_per_token=2.0, backward_per_token=4.0, attention_forward=0.0, attention_backward=0.0,
                     matmul_weights=1, layers_with_grad=1, layers=1)


def test_rank_and_world_size_come_from_the_launcher(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert is_main() and world_size() == 1
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert not is_main() and world_size() == 4
    monkeypatch.setenv("RANK", "0")
    assert is_main()


def test_budget_reached_is_an_exception_of_its_own():
    assert issubclass(BudgetReached, Exception) and not issubclass(BudgetReached, StRecipeError)


@pytest.mark.parametrize("remaining, k", [(1e9, 3), (54.0, 3), (53.9, 2), (30.0, 2), (29.9, 1), (12.0, 1),
                                          (11.9, 0), (0.0, 0), (-5.0, 0)])
def test_pairs_that_fit_counts_the_leading_pairs_of_both_sides(remaining, k):
    # Pairs cost 6 * (1 + 1), 6 * (2 + 1), 6 * (3 + 1) = 12, 18, 24: the leading ones cost 12, 30, 54.
    assert pairs_that_fit([[1, 2, 3], [1, 1, 1]], remaining, LINEAR) == k


def test_pairs_that_fit_keeps_the_batch_order_not_the_cheapest_pairs():
    # The first pair alone is over the remaining budget: none fit, even though the later ones are cheap.
    assert pairs_that_fit([[10, 1, 1]], 59.0, LINEAR) == 0
    assert pairs_that_fit([[10, 1, 1]], 72.0, LINEAR) == 3


def test_pairs_that_fit_counts_the_quadratic_attention_term():
    profile = CostProfile(1.0, 1.0, 0.5, 0.5, 1, 1, 1)  # t tokens cost 2t + t**2
    assert profile.sequence_flops(4) == 24.0
    assert pairs_that_fit([[4, 4]], 47.9, profile) == 1 and pairs_that_fit([[4, 4]], 48.0, profile) == 2


def test_pairs_that_fit_agrees_with_the_meter():
    sides = [[5, 9, 2, 7], [3, 3, 8, 1], [4, 4, 4, 4]]
    meter = FlopMeter(LINEAR)
    for k in range(5):
        exact = meter.batch_flops([s[:k] for s in sides])
        assert pairs_that_fit(sides, exact, LINEAR) == k
        if k:
            assert pairs_that_fit(sides, exact - 1e-6, LINEAR) == k - 1


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_warmup_rises_linearly_to_the_peak(schedule):
    factor = lr_schedule(4, 20, schedule)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == 1.0  # the first step after warm-up trains at the peak


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_decaying_schedules_fall_monotonically_to_zero_and_stay_there(schedule):
    factor = lr_schedule(2, 12, schedule)
    after = [factor(s) for s in range(2, 13)]
    assert all(a > b for a, b in zip(after, after[1:]))
    assert after[0] == 1.0 and after[-1] == 0.0
    assert [factor(s) for s in (12, 13, 100)] == [0.0, 0.0, 0.0]


def test_no_warmup_starts_at_the_peak():
    for schedule in SCHEDULES:
        assert lr_schedule(0, 10, schedule)(0) == 1.0
    assert lr_schedule(0, 10, "linear")(5) == pytest.approx(0.5)


def test_a_plan_no_longer_than_its_warmup_does_not_divide_by_zero():
    factor = lr_schedule(3, 3, "cosine")
    assert [factor(s) for s in range(5)] == pytest.approx([1 / 3, 2 / 3, 1.0, 0.0, 0.0])
    assert lr_schedule(0, 0, "linear")(0) == 0.0


def test_unknown_schedule_message_lists_the_choices():
    with pytest.raises(StRecipeError, match=r"^schedule must be cosine, linear, constant, not 'Cosine'$"):
        lr_schedule(1, 10, "Cosine")


def test_budget_settings_default_to_cosine_without_padding_free(tmp_path):
    settings = BudgetSettings(meter=FlopMeter(LINEAR), padded_meter=FlopMeter(LINEAR, count_padding=True),
                              state=BudgetState(budget=1.0), warmup=1, planned_steps=4, checkpoints=tmp_path)
    assert settings.schedule == "cosine" and settings.padding_free is None


@pytest.fixture
def callback():
    from transformers import TrainerCallback

    state = BudgetState(budget=100.0)
    return budget_callback(TrainerCallback, state, resume_from=None, quiet=True), state


def test_step_end_moves_the_step_counts_into_the_totals(callback):
    cb, state = callback
    control = SimpleNamespace(should_training_stop=False, should_save=True)
    for flops in (10.0, 15.0):
        state.step_flops, state.step_padded, state.step_tokens, state.step_pairs = flops, 2 * flops, 7, 2
        cb.on_step_end(None, None, control)
    assert (state.flops, state.padded, state.tokens, state.pairs) == (25.0, 50.0, 14, 4)
    assert (state.step_flops, state.step_padded, state.step_tokens, state.step_pairs) == (0.0, 0.0, 0, 0)
    assert state.stopped_by == "max_steps" and not control.should_training_stop and control.should_save


def test_a_partial_final_batch_stops_training_without_a_checkpoint(callback):
    cb, state = callback
    control = SimpleNamespace(should_training_stop=False, should_save=True)
    state.step_flops, state.partial_final_batch = 99.0, 3
    cb.on_step_end(None, None, control)
    assert state.stopped_by == "budget" and control.should_training_stop and not control.should_save
    assert state.flops == 99.0


def test_the_callback_records_each_steps_lr_and_loss(callback):
    cb, state = callback
    for lr in (1e-4, 5e-4):
        cb.on_optimizer_step(None, None, None, optimizer=SimpleNamespace(param_groups=[{"lr": lr}, {"lr": 9.0}]))
    cb.on_log(None, SimpleNamespace(global_step=1), None, logs={"loss": 1.23456789})
    cb.on_log(None, SimpleNamespace(global_step=1), None, logs={"learning_rate": 1.0})  # not a loss: ignored
    assert state.lrs == [1e-4, 5e-4] and state.losses == [1.234568]


def test_resume_restores_the_saved_totals(tmp_path):
    from transformers import TrainerCallback

    saved = BudgetState(budget=100.0, flops=40.0, padded=50.0, tokens=300, pairs=12, losses=[2.0, 1.0], lrs=[1e-4])
    (tmp_path / METER_STATE).write_text(json.dumps(saved.saved()))
    state = BudgetState(budget=100.0)
    cb = budget_callback(TrainerCallback, state, resume_from=tmp_path, quiet=True)
    cb.on_train_begin(None, None, None)
    assert (state.flops, state.padded, state.tokens, state.pairs) == (40.0, 50.0, 300, 12)
    assert state.losses == [2.0, 1.0] and state.lrs == [1e-4] and state.remaining == 60.0


def test_a_budgeted_run_stops_at_the_budget_without_exceeding_it(tiny_encoder, tmp_path):
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    from st_recipe.costing.flops import lengths_from_mask, profile_model
    from st_recipe.training.trainer import make_trainer
    from tests.kit import pair_dataset

    data = pair_dataset(32)
    meter = FlopMeter(profile_model(tiny_encoder))
    pair_costs = [meter.batch_flops([lengths_from_mask(tiny_encoder.tokenize([text])["attention_mask"])
                                     for text in (row["anchor"], row["positive"])]) for row in data]
    budget = 2.5 * sum(pair_costs) / 4  # two and a half batches of 8
    state = BudgetState(budget=budget)
    args = SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "out"), max_steps=4,
                                                per_device_train_batch_size=8, learning_rate=1e-3, save_strategy="no",
                                                report_to=[], logging_steps=1, use_cpu=True, seed=0,
                                                disable_tqdm=True)
    callback = budget_callback(TrainerCallback, state, resume_from=None, quiet=True)
    trainer = make_trainer(SentenceTransformerTrainer, meter=meter,
                           padded_meter=FlopMeter(meter.profile, count_padding=True), state=state, warmup=1,
                           planned_steps=4, checkpoints=tmp_path / "ckpt", model=tiny_encoder, args=args,
                           train_dataset=data, loss=MultipleNegativesRankingLoss(tiny_encoder), callbacks=[callback])
    assert type(trainer).__name__ == "BudgetTrainer" and trainer.budget_settings.state is state
    try:
        trainer.train()
    except BudgetReached:  # fewer than two pairs were left: what orchestrate records as a budget stop
        state.stopped_by = "budget"
    assert state.stopped_by == "budget"
    assert state.flops <= budget
    assert budget - state.flops < 2 * max(pair_costs)  # stopped only when not even the next pairs fitted
    assert 16 <= state.pairs < 32 and state.padded >= state.flops
    assert len(state.lrs) == trainer.state.global_step >= 2
    assert state.lrs[0] == pytest.approx(1e-3)  # one warm-up step reaches the peak
