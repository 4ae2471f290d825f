"""The table of published pretraining LRs and matching a model (name and shape) to an entry."""

from __future__ import annotations

import pytest

from st_recipe.models import pretrain_lrs, shapes
from tests.model_configs import FULL


def test_pretrain_lr_table() -> None:
    llama2 = FULL["Llama-2-7b"]
    for name in ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-chat-hf", "/models/llama-2-7b"):
        lr, source = pretrain_lrs.pretrain_lr_for(llama2, name)
        assert lr == 3e-4 and "Llama 2" in source
    assert pretrain_lrs.pretrain_lr_for(llama2, "meta-llama/Llama-2-70b-hf") is None  # name and shape disagree
    assert pretrain_lrs.pretrain_lr_for(llama2, "my-finetune") is None
    assert pretrain_lrs.pretrain_lr_for(dict(llama2, _name_or_path="huggyllama/llama-7b"), "/tmp/x")[0] == 3e-4
    assert pretrain_lrs.pretrain_lr_for(FULL["opt-125m"], "facebook/opt-125m") == (
        6e-4,
        pretrain_lrs.PRETRAIN_LRS["opt-125m"].source,
    )
    assert pretrain_lrs.pretrain_lr_for(FULL["opt-350m"], "facebook/opt-350m")[0] == 3e-4
    assert pretrain_lrs.pretrain_lr_for(FULL["opt-350m"], "facebook/opt-125m") is None
    assert pretrain_lrs.pretrain_lr_for(FULL["pythia-410m"], "EleutherAI/pythia-410m-deduped")[0] == 3e-4
    assert pretrain_lrs.pretrain_lr_for(FULL["Qwen2.5-0.5B"], "Qwen/Qwen2.5-0.5B") is None
    assert pretrain_lrs.pretrain_lr_for(FULL["gpt2"], "gpt2") is None
    for entry in pretrain_lrs.PRETRAIN_LRS.values():
        assert 0 < entry.lr < 1e-2 and entry.source and entry.family
    shape = shapes.shape_from_config(llama2, "meta-llama/Llama-2-7b-hf")
    assert (shape.family, shape.pretrain_lr, shape.finetune_lr) == ("llama-2", 3e-4, pytest.approx(3e-5))
