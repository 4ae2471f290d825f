"""Padding-free training: sub-batch plans, and the same loss, gradients and embeddings as the padded batch."""

from __future__ import annotations

import pytest

from st_recipe.training import varlen
from st_recipe.training.packed_rows import encode_packed, first_fit
from st_recipe.training.packing import (
    PaddingFree,
    encode_sub_batches,
    executed_flops,
    padding_free,
    plan_groups,
)

TEXTS_A = ["a", "The cat sat on the mat.", "Embeddings map sentences to vectors and more vectors.", "He cooked",
           "Rivers flow from the mountains to the sea, and back by rain over the hills again.", "x y",
           "She reads a book about the history of Rome.", "Machine learning"]
TEXTS_B = ["About the cat: it sat.", "dogs", "A dog is running in the park with a red ball and a friend.",
           "The weather is sunny and warm today.", "ok", "Rome, history, books, reading, and a long afternoon.",
           "pasta", "Models learn from data, slowly."]


def test_plan_groups_covers_every_row_once_and_is_sorted():
    lengths = [5, 40, 7, 75, 12, 12, 3, 60]
    for overhead in (0.0, 10.0, 1e9):
        groups = plan_groups(lengths, overhead=overhead)
        flat = [i for g in groups for i in g]
        assert sorted(flat) == list(range(len(lengths)))
        assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert len(plan_groups(lengths, overhead=1e9)) == 1  # a huge overhead: one padded batch
    assert len(plan_groups(lengths, overhead=0.0, max_groups=8)) == len(set(lengths))  # free groups: one per length
    assert plan_groups([], overhead=0.0) == []


def test_executed_flops_of_one_group_is_the_padded_batch():
    lengths = [3, 9, 4]
    assert executed_flops(lengths, [[0, 1, 2]], float) == 27
    assert executed_flops(lengths, [[1], [2, 0]], float) == 9 + 8


def test_first_fit_packs_every_row_once_within_the_width():
    lengths = [5, 40, 7, 75, 12, 12, 3, 60]
    bins = first_fit(lengths, 75)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 75 for b in bins)
    assert len(bins) == 3  # 75 | 60+12+3 | 40+12+7+5


def _encoder(folder, method, args):
    import torch

    from st_recipe.encoder import build_encoder
    from st_recipe.methods import get_method

    torch.manual_seed(0)
    model = build_encoder(str(folder), max_seq_length=32)
    get_method(method, **args).apply(model)
    model.train()
    return model


def _loss_and_grads(model, features, layout):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    loss_fn = MultipleNegativesRankingLoss(model, scale=20.0, directions=("query_to_doc", "doc_to_query"),
                                           partition_mode="per_direction")
    model.zero_grad(set_to_none=True)
    planner = lambda lengths: plan_groups(lengths, overhead=0.0)  # noqa: E731 - as many groups as lengths
    strategy = None
    if layout != "padded":
        strategy = PaddingFree(planner, float, pack=layout in ("packed", "varlen"), varlen=layout == "varlen")
        with padding_free(model, strategy):
            loss = loss_fn([dict(f) for f in features], None)
        assert set(strategy.layouts) == {LAYOUT_NAMES[layout]}, strategy.layouts
        assert 0 < strategy.executed < sum(f["attention_mask"].numel() for f in features)
        if layout == "varlen":  # every real token once, no padding at all
            assert strategy.executed == sum(int(f["attention_mask"].sum()) for f in features)
    else:
        loss = loss_fn([dict(f) for f in features], None)
    loss.backward()  # outside the block, as in the trainer (gradient checkpointing recomputes here)
    if strategy is not None:
        strategy.restore()
        assert model[0].auto_model.config._attn_implementation == "sdpa"
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return float(loss.detach()), grads


LAYOUT_NAMES = {"varlen": "flat stream (varlen)", "packed": "packed", "sub-batches": "sub-batches"}
METHODS = [("full", {}), ("lora", {"r": 4}), ("bias", {}), ("freeze", {"blocks": 1}), ("propulsion", {"degree": 10}),
           ("peft", {"peft_type": "ia3"})]


@pytest.mark.parametrize("layout", ["varlen", "packed", "sub-batches"])
@pytest.mark.parametrize("arch", ["neox", "llama"])
@pytest.mark.parametrize("method, args", METHODS)
def test_same_loss_gradients_and_embeddings_as_the_padded_batch(tiny_neox_dir, tiny_llama_dir, arch, method, args,
                                                                 layout):
    import torch

    if arch == "llama" and method == "bias":
        pytest.skip("Llama has no biases: bias-only tuning is refused")
    model = _encoder(tiny_neox_dir if arch == "neox" else tiny_llama_dir, method, args)
    features = [model.tokenize(TEXTS_A), model.tokenize(TEXTS_B)]
    assert len(set(features[0]["attention_mask"].sum(1).tolist())) > 3  # really several sub-batches
    # Propulsion, IA3 and LoRA start at identity: nudge every trainable weight so the gradients mean something.
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn(p.shape, generator=gen))
    padded_loss, padded_grads = _loss_and_grads(model, features, "padded")
    free_loss, free_grads = _loss_and_grads(model, features, layout)
    assert free_loss == pytest.approx(padded_loss, rel=1e-5)
    assert set(free_grads) == set(padded_grads) and padded_grads
    for name, g in padded_grads.items():
        scale = max(float(g.abs().max()), 1e-12)
        assert float((free_grads[name] - g).abs().max()) <= 1e-5 * scale, name
    model.eval()
    with torch.no_grad():
        padded = model(dict(features[0]))["sentence_embedding"]
        if layout == "packed":
            free = encode_packed(model, dict(features[0]))
            lengths = features[0]["attention_mask"].sum(1).tolist()
            one_row = encode_packed(model, dict(features[0]), [list(range(len(lengths)))], row_width=sum(lengths))
            assert torch.allclose(one_row["sentence_embedding"], padded, rtol=1e-5, atol=1e-6)
        elif layout == "varlen":
            varlen.enable(model[0].auto_model)
            free = varlen.encode_flat(model, dict(features[0]))
            varlen.disable(model[0].auto_model)
        else:
            free = encode_sub_batches(model.forward, dict(features[0]), lambda n: plan_groups(n, overhead=0.0))
    assert torch.allclose(free["sentence_embedding"], padded, rtol=1e-5, atol=1e-6)
    assert "forward" not in vars(model)  # the training forward is gone: the saved model is the plain one


def test_left_padding_falls_back_to_the_padded_forward(tiny_neox_dir):
    import torch

    from st_recipe.encoder import build_encoder

    model = build_encoder(str(tiny_neox_dir), max_seq_length=32, padding_side="left")
    features = model.tokenize(TEXTS_A)
    calls = []

    def forward(f):
        calls.append(f["input_ids"].shape)
        return model.forward(f)

    with torch.no_grad():
        encode_sub_batches(forward, dict(features), lambda n: plan_groups(n, overhead=0.0))
        assert encode_packed(model, dict(features)) is None
    assert calls == [features["input_ids"].shape]


def test_train_default_is_padding_free_and_spends_its_budget(tiny_neox_dir, tmp_path):
    from st_recipe.planning.recipes import Recipe
    from st_recipe.training import train

    # Length 96: texts vary enough for the padding-free layouts to save something (at 32 the tiny tokenizer's
    # texts nearly all hit the cap, and the padded batch is what runs).
    recipe = Recipe(model=str(tiny_neox_dir), method="full", pairs=640, batch_size=16, learning_rate=1e-3,
                    budget=8e9, max_seq_length=96)
    free = train(recipe, "builtin", out=tmp_path / "free", quiet=True).record
    padded = train(recipe, "builtin", out=tmp_path / "padded", quiet=True, padding_free=False).record
    for rec in (free, padded):
        assert 0.99 <= rec.flops.spent_fraction <= 1.0, rec.flops
    assert free.flops.spent <= free.flops.executed_with_padding < padded.flops.executed_with_padding
    # The flat stream runs the real tokens only: what ran is what was metered (round 2's packed rows: 1.3x).
    assert free.flops.executed_with_padding <= 1.001 * free.flops.spent, free.flops
    assert free.steps == padded.steps and free.pairs_seen == padded.pairs_seen
    assert free.loss.per_step == pytest.approx(padded.loss.per_step, rel=1e-3)


@pytest.mark.parametrize("flag, expected", [([], True), (["--padding-free"], True), (["--no-padding-free"], False)])
def test_cli_flag_reaches_train(monkeypatch, tmp_path, flag, expected):
    from click.testing import CliRunner

    import st_recipe.cli.train as train_cmd_module
    import st_recipe.training as train_module
    from st_recipe.cli import main
    from st_recipe.run import FlopsInfo, RunRecord
    from st_recipe.training import RunResult

    seen = {}

    def finished(recipe, data, options):
        seen["padding_free"] = options.padding_free
        return RunResult(out=tmp_path / "run", record=RunRecord(recipe={}, steps=1, flops=FlopsInfo(budget=1.0)))

    monkeypatch.setattr(train_cmd_module, "quiet_libraries", lambda *loud: None)
    monkeypatch.setattr(train_module, "train", finished)
    result = CliRunner().invoke(main, ["train", "--model", "random:pythia-14m", "--budget", "1e15", "--out",
                                       str(tmp_path / "run"), "--quiet", *flag])
    assert result.exit_code == 0, result.output
    assert seen["padding_free"] is expected


@pytest.mark.parametrize("use_varlen", [True, False])
@pytest.mark.parametrize("arch", ["neox", "llama"])
def test_packing_is_checked_on_the_first_batch_that_has_something_to_pack(tiny_neox_dir, tiny_llama_dir, arch,
                                                                          use_varlen):
    """A first side that packs nothing (every text at the cap) must not switch packing (or varlen) off for the run."""
    import torch

    from st_recipe import build_encoder
    from st_recipe.costing.flops import profile_model
    from st_recipe.data import load_pairs
    from st_recipe.training.packing import input_embedding, padding_free_strategy

    model = build_encoder(str(tiny_neox_dir if arch == "neox" else tiny_llama_dir), max_seq_length=32)
    pairs = load_pairs("builtin", split="test", limit=64)
    strategy = padding_free_strategy(profile_model(model), 0, varlen=use_varlen)
    long_side = model.tokenize(pairs.positives[:16])  # the tiny tokenizer puts these at the 32-token cap
    short_side = model.tokenize([t[:40] for t in pairs.anchors[:4]] + [t[:6] for t in pairs.anchors[4:16]])
    original = type(model).forward.__get__(model)
    with torch.no_grad():
        for features in (long_side, short_side):
            free = strategy.encode(model, original, input_embedding(model), dict(features))
            padded = original(dict(features))
            assert (free["sentence_embedding"] - padded["sentence_embedding"]).abs().max().item() <= 1e-5
    if use_varlen:
        assert strategy.varlen is True and strategy.packs is None
        assert set(strategy.layouts) <= {"padded (no padding)", "flat stream (varlen)"}
        strategy.restore()
        assert model[0].auto_model.config._attn_implementation == "sdpa"
    else:
        assert strategy.packs is True and strategy.varlen is None


@pytest.mark.parametrize("variant", ["plain", "gradient checkpointing", "bidirectional"])
@pytest.mark.parametrize("arch", ["neox", "llama", "qwen2 (GQA)"])
def test_varlen_is_exact_with_checkpointing_and_bidirectional_attention(tiny_neox_dir, tiny_llama_dir, tiny_qwen_dir,
                                                                        arch, variant):
    """Checkpointed layers are replayed in the backward pass, after the padding-free block has closed; a
    bidirectional decoder attends both ways within each text; grouped-query attention shares key/value heads.
    All must still give the padded batch's gradients."""
    from st_recipe.encoder import make_bidirectional

    model = _encoder({"neox": tiny_neox_dir, "llama": tiny_llama_dir}.get(arch, tiny_qwen_dir), "full", {})
    if variant == "plain":
        pass
    elif variant == "bidirectional":
        make_bidirectional(model[0].auto_model)
    else:
        model[0].auto_model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    features = [model.tokenize(TEXTS_A), model.tokenize(TEXTS_B)]
    padded_loss, padded_grads = _loss_and_grads(model, features, "padded")
    free_loss, free_grads = _loss_and_grads(model, features, "varlen")
    assert free_loss == pytest.approx(padded_loss, rel=1e-5)
    for name, g in padded_grads.items():
        assert float((free_grads[name] - g).abs().max()) <= 1e-5 * max(float(g.abs().max()), 1e-12), name


def test_varlen_refuses_a_sliding_window_a_text_could_exceed(tiny_qwen_dir):
    """Per-text SDPA has no window: a model whose window is shorter than its texts may be keeps another layout."""
    from st_recipe.encoder import build_encoder

    model = build_encoder(str(tiny_qwen_dir), max_seq_length=32)
    config = model[0].auto_model.config
    assert varlen.supported(model[0].auto_model, 32)
    config.sliding_window, config.use_sliding_window = 16, True
    assert not varlen.supported(model[0].auto_model, 32)
    assert varlen.supported(model[0].auto_model, 16)
    config.use_sliding_window = False  # Qwen2's switch: the window is configured but not used
    assert varlen.supported(model[0].auto_model, 32)
