"""st_recipe.launch: the shipped accelerate configs and the ``accelerate launch`` command built for a run."""

from __future__ import annotations

import shlex

import pytest

from st_recipe import StRecipeError, launch
from st_recipe.launch import (
    CONFIG_PROCESSES,
    LAUNCH_CONFIGS,
    block_class,
    launch_command,
    launch_config,
    model_type_for,
    strip_option,
)


def _words(command: str) -> list[str]:
    """The command split as a shell would (the placeholders hold no spaces)."""
    return shlex.split(command)


def _option(words: list[str], name: str) -> str | None:
    return words[words.index(name) + 1] if name in words else None


@pytest.mark.parametrize("kind", sorted(LAUNCH_CONFIGS))
def test_every_kind_has_its_shipped_config(kind):
    path = launch_config(kind)
    assert path.is_file() and path.name == LAUNCH_CONFIGS[kind]


def test_deepspeed_means_zero3():
    assert launch_config("deepspeed") == launch_config("deepspeed-zero3")


def test_an_unknown_kind_names_the_choices():
    with pytest.raises(StRecipeError, match=r"^unknown --distributed 'horovod'; choose one of ddp, fsdp, fsdp2, "
                                            r"deepspeed, deepspeed-zero2, deepspeed-zero3$"):
        launch_config("horovod")


def test_a_config_missing_from_the_installation_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(launch, "launch_dir", lambda: tmp_path)
    with pytest.raises(StRecipeError, match=r"the launch config .*ddp\.yaml is missing from this installation"):
        launch_config("ddp")


def test_single_machine_command_keeps_the_config_process_count_and_quotes_arguments():
    command = launch_command("ddp", ["--budget", "1e15", "--out", "my run"])
    words = _words(command)
    assert words[:4] == ["accelerate", "launch", "--config_file", str(launch_config("ddp"))]
    assert "--num_processes" not in words and "--num_machines" not in words
    assert _option(words, "--mixed_precision") == "no"
    assert words[-7:] == ["-m", "st_recipe.cli", "train", "--budget", "1e15", "--out", "my run"]
    assert "'my run'" in command


def test_gpus_per_machine_and_bf16():
    words = _words(launch_command("ddp", [], processes=4, bf16=True))
    assert _option(words, "--num_processes") == "4" and _option(words, "--mixed_precision") == "bf16"


def test_several_machines_count_every_process_and_leave_placeholders():
    command = launch_command("deepspeed-zero2", ["--budget", "1e15"], machines=3)
    words = _words(command)
    assert _option(words, "--num_processes") == str(CONFIG_PROCESSES * 3)
    assert _option(words, "--num_machines") == "3"
    # The per-machine values are left for the user, unquoted so they read as placeholders.
    assert "--machine_rank <MACHINE_RANK>" in command and "--main_process_ip <MAIN_MACHINE_IP>" in command
    assert _option(words, "--main_process_port") == "29500"
    assert _option(_words(launch_command("ddp", [], processes=2, machines=2)), "--num_processes") == "4"


def test_fsdp_wraps_the_models_own_decoder_block(tiny_llama_dir, tiny_qwen_dir):
    for kind in ("fsdp", "fsdp2"):
        words = _words(launch_command(kind, [], model=str(tiny_llama_dir)))
        assert _option(words, "--fsdp_transformer_layer_cls_to_wrap") == "LlamaDecoderLayer"
    words = _words(launch_command("fsdp", [], model=str(tiny_qwen_dir)))
    assert _option(words, "--fsdp_transformer_layer_cls_to_wrap") == "Qwen2DecoderLayer"


def test_fsdp_on_gpt_neox_uses_the_shipped_wrap_unit(tiny_neox_dir):
    for model in ("pythia-14m", str(tiny_neox_dir)):
        assert "--fsdp_transformer_layer_cls_to_wrap" not in launch_command("fsdp", [], model=model)


def test_ddp_and_deepspeed_need_no_wrap_unit(tiny_llama_dir):
    for kind in ("ddp", "deepspeed"):
        assert "cls_to_wrap" not in launch_command(kind, [], model=str(tiny_llama_dir))


def test_fsdp_on_a_model_it_cannot_read_says_what_to_edit(tmp_path):
    with pytest.raises(StRecipeError, match=r"^cannot tell the decoder block class of .*missing.* for FSDP's wrap "
                                            r"unit; edit fsdp_transformer_layer_cls_to_wrap in a copy of .*fsdp2\.yaml$"):
        launch_command("fsdp2", [], model=str(tmp_path / "missing"))


def test_model_types_and_block_classes(tiny_llama_dir, tiny_neox_dir, tmp_path):
    assert model_type_for("pythia-14m") == "gpt_neox"
    assert model_type_for(str(tiny_llama_dir)) == "llama"
    assert model_type_for(str(tiny_neox_dir)) == "gpt_neox"
    assert model_type_for(str(tmp_path / "missing")) is None
    assert block_class("gpt_neox") == "GPTNeoXLayer" and block_class("gemma3_text") == "Gemma3DecoderLayer"
    assert block_class("bert") is None and block_class(None) is None and block_class("") is None


@pytest.mark.parametrize("argv, expected", [
    (["--budget", "1e15", "--distributed", "fsdp", "--out", "r"], ["--budget", "1e15", "--out", "r"]),
    (["--distributed=fsdp", "--out", "r"], ["--out", "r"]),
    (["--out", "r", "--distributed"], ["--out", "r"]),
    (["--distributed-extra", "x", "--out", "--distributed"], ["--distributed-extra", "x", "--out"]),
    ([], []),
])
def test_strip_option(argv, expected):
    assert strip_option(argv, "--distributed") == expected


def test_strip_option_leaves_its_input_alone():
    argv = ["--gpus", "8", "--out", "r"]
    assert strip_option(argv, "--gpus") == ["--out", "r"] and argv == ["--gpus", "8", "--out", "r"]
