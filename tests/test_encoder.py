"""build_encoder: built-in modules only, pad token, padding side, pooling modes, clean saves."""

from __future__ import annotations

import json

import pytest
import torch

from st_recipe import StRecipeError, build_encoder
from st_recipe._text import looks_like_local_path
from st_recipe.encoder import encoder_source, save_encoder

TEXTS = ["A short one.", "A much longer sentence that needs several more tokens than the first one does."]


def _embed(model, texts):
    return model.encode(texts, convert_to_tensor=True, batch_size=len(texts))


def _assert_padding_invariant(model):
    together = _embed(model, TEXTS)
    alone = torch.stack([_embed(model, [t])[0] for t in TEXTS])
    assert (together - alone).abs().max().item() <= 1e-5


def test_mean_encoder_is_transformer_plus_pooling(tiny_neox_dir):
    model = build_encoder(str(tiny_neox_dir), max_seq_length=32)
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling"]
    assert model[1].pooling_mode == "mean"
    tok = model[0].tokenizer
    assert tok.pad_token == tok.eos_token  # reused, not added
    assert len(tok) == 600
    assert tok.padding_side == "right"
    assert model.max_seq_length == 32
    _assert_padding_invariant(model)
    assert encoder_source(model)["random_init"] is False


def test_normalize_adds_unit_norm(tiny_neox_dir):
    model = build_encoder(str(tiny_neox_dir), normalize=True)
    assert type(model[-1]).__name__ == "Normalize"
    assert torch.allclose(_embed(model, TEXTS).norm(dim=-1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_side_survives_save_and_reload(tiny_neox_dir, tmp_path, side):
    from sentence_transformers import SentenceTransformer

    model = build_encoder(str(tiny_neox_dir), padding_side=side)
    _assert_padding_invariant(model)
    save_encoder(model, tmp_path / "m")
    again = SentenceTransformer(str(tmp_path / "m"))
    assert again[0].tokenizer.padding_side == side
    assert (_embed(again, TEXTS) - _embed(model, TEXTS)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("pooling", ["mean", "weightedmean"])
def test_left_padding_survives_reload_in_a_fresh_process(tiny_neox_dir, tmp_path, pooling):
    import subprocess
    import sys

    model = build_encoder(str(tiny_neox_dir), padding_side="left", pooling=pooling)
    model.encode(TEXTS)  # a call before saving must not reset the recorded side
    save_encoder(model, tmp_path / "m")
    code = ("import sys; from sentence_transformers import SentenceTransformer as S; "
            "m = S(sys.argv[1]); print(m[0].tokenizer.padding_side, m.tokenize(['a', 'a b c d'])['attention_mask'][0][0].item())")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["left", "0"], out.stderr[-2000:]


def test_saved_folder_is_readable_by_others_and_has_no_load_time_keys(tiny_neox_dir, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = save_encoder(build_encoder(str(tiny_neox_dir)), tmp_path / "m")
    finally:
        os.umask(old)
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert "is_local" not in config and "local_files_only" not in config
    assert config["padding_side"] == "right"


def test_lasttoken_appends_eos_and_keeps_it_after_reload(tiny_neox_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = build_encoder(str(tiny_neox_dir), pooling="lasttoken")
    eos = model[0].tokenizer.eos_token_id
    ids = model[0].tokenizer(["hello world"])["input_ids"][0]
    assert ids[-1] == eos
    _assert_padding_invariant(model)
    save_encoder(model, tmp_path / "m")
    again = SentenceTransformer(str(tmp_path / "m"))
    assert again[0].tokenizer(["hello world"])["input_ids"][0] == ids
    assert (_embed(again, TEXTS) - _embed(model, TEXTS)).abs().max().item() <= 1e-5


def test_lasttoken_keeps_a_bos_the_tokenizer_puts_first(tmp_path):
    # Gemma's and Llama's tokenizers add BOS in their post-processor; appending EOS must not drop it (found on
    # Gemma 3 270M: lasttoken pooling tokenized "hello world" as [hello, world, <eos>], without <bos>).
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    from st_recipe.encoder import configure_tokenizer
    from tests import kit

    tok = kit.tiny_tokenizer()
    tok.add_special_tokens({"bos_token": "<bos>"})
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tok.bos_token_id)])
    plain = tok("hello world")["input_ids"]
    assert plain[0] == tok.bos_token_id
    configured = configure_tokenizer(tok, append_eos=True)
    ids = configured("hello world")["input_ids"]
    assert ids == plain + [configured.eos_token_id]
    configured.save_pretrained(tmp_path / "tok")
    assert PreTrainedTokenizerFast.from_pretrained(tmp_path / "tok")("hello world")["input_ids"] == ids
    # A tokenizer without a leading BOS gets none (GPT-NeoX / Pythia: BOS and EOS are one token, never prepended).
    neox = kit.tiny_tokenizer()
    expected = neox("hello world")["input_ids"] + [neox.eos_token_id]
    assert configure_tokenizer(neox, append_eos=True)("hello world")["input_ids"] == expected


def test_weightedmean_pooling(tiny_neox_dir):
    model = build_encoder(str(tiny_neox_dir), pooling="weightedmean")
    assert model[1].pooling_mode == "weightedmean"
    _assert_padding_invariant(model)


def test_llama_style_folder(tiny_llama_dir):
    model = build_encoder(str(tiny_llama_dir))
    assert model[0].auto_model.config.model_type == "llama"
    _assert_padding_invariant(model)


def test_random_spec_is_labelled_random_once_per_process(caplog):
    from st_recipe import encoder

    encoder._WARNED_RANDOM.clear()  # another test may have built it first
    with caplog.at_level("WARNING"):
        model = build_encoder("random:pythia-14m")
    assert encoder_source(model) == {"model": "random:pythia-14m", "load_id": "random:pythia-14m", "random_init": True}
    assert caplog.text.count("randomly initialised") == 1
    assert model.get_embedding_dimension() == 128
    caplog.clear()
    with caplog.at_level("WARNING"):
        build_encoder("random:pythia-14m")  # a sweep's next cell: the notice is not repeated
    assert "randomly initialised" not in caplog.text


def test_saved_folder_has_no_local_paths(tiny_neox_dir, tmp_path):
    model = build_encoder(str(tiny_neox_dir))
    out = save_encoder(model, tmp_path / "saved")
    for path in out.rglob("*.json"):
        text = path.read_text()
        assert str(tiny_neox_dir) not in text and str(tmp_path) not in text, path

        def walk(v):
            if isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)
            elif isinstance(v, str):
                assert not looks_like_local_path(v), (path, v)

        walk(json.loads(text))


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"pooling": "cls"}, "unknown pooling"),
        ({"padding_side": "middle"}, "padding side"),
        ({"max_seq_length": 0}, "max_seq_length"),
    ],
)
def test_bad_arguments(tiny_neox_dir, kwargs, needle):
    with pytest.raises(StRecipeError, match=needle):
        build_encoder(str(tiny_neox_dir), **kwargs)


def test_folder_without_a_model_is_one_line_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(StRecipeError) as info:
        build_encoder(str(tmp_path))
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_chat_template_never_wraps_texts_even_after_plain_reload(tiny_llama_dir, tmp_path):
    import shutil

    folder = tmp_path / "instruct"
    shutil.copytree(tiny_llama_dir, folder)
    template = "{% for m in messages %}<|im_start|>system You are helpful.<|im_end|>{{ m['content'] }}{% endfor %}"
    (folder / "chat_template.jinja").write_text(template)
    model = build_encoder(str(folder), max_seq_length=32)
    assert model[0].tokenizer.chat_template  # kept for the user, but not applied to texts
    raw = model[0].tokenizer(TEXTS[:1])["input_ids"][0]
    assert model.tokenize(TEXTS[:1])["input_ids"][0].tolist()[: len(raw)] == raw
    save_encoder(model, tmp_path / "saved")
    assert "message" not in json.loads((tmp_path / "saved" / "sentence_bert_config.json").read_text())["modality_config"]
    from sentence_transformers import SentenceTransformer

    again = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert again.tokenize(TEXTS[:1])["input_ids"][0].tolist()[: len(raw)] == raw
    assert (_embed(again, TEXTS) - _embed(model, TEXTS)).abs().max().item() <= 1e-5
