"""Offline test kit: tiny random decoder models with a small trained byte-level BPE tokenizer."""

from __future__ import annotations

import inspect
from functools import lru_cache
from pathlib import Path
from typing import Any

SENTENCES = [
    "The cat sat on the mat.",
    "A dog is running in the park.",
    "Machine learning models learn from data.",
    "The weather is sunny and warm today.",
    "She reads a book about the history of Rome.",
    "Embeddings map sentences to vectors.",
    "Rivers flow from the mountains to the sea.",
    "He cooked pasta with tomato sauce for dinner.",
]


@lru_cache(maxsize=1)
def _corpus() -> tuple[str, ...]:
    import collections
    import json
    import pathlib

    docs = [inspect.getdoc(m) or "" for m in (collections, json, pathlib, inspect)]
    return tuple(SENTENCES) + tuple(d for d in docs if d)


def tiny_tokenizer(vocab_size: int = 600) -> Any:
    """A byte-level BPE trained in well under a second, with EOS but no pad token (like Pythia's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>", unk_token="<|endoftext|>")


def _save_tiny(path: Path, config: Any, model_cls: Any, tok: Any, seed: int) -> Path:
    import torch

    torch.manual_seed(seed)
    model_cls(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_tiny_gptneox(path: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Save a tiny random GPT-NeoX causal LM and its tokenizer to ``path``."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    tok = tiny_tokenizer()
    config = GPTNeoXConfig(vocab_size=640, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                           intermediate_size=4 * hidden, rotary_pct=0.25, max_position_embeddings=128,
                           bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    return _save_tiny(path, config, GPTNeoXForCausalLM, tok, seed)


def make_tiny_llama(path: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Save a tiny random Llama-style causal LM (no biases, grouped-query attention) and its tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    config = LlamaConfig(vocab_size=640, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=2 * hidden, max_position_embeddings=128,
                         bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    return _save_tiny(path, config, LlamaForCausalLM, tok, seed)


def make_tiny_qwen2(path: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Save a tiny random Qwen2-style causal LM (q/k/v biases, grouped-query attention, tied embeddings)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = tiny_tokenizer()
    config = Qwen2Config(vocab_size=640, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=2 * hidden, max_position_embeddings=128,
                         bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    return _save_tiny(path, config, Qwen2ForCausalLM, tok, seed)


def pair_dataset(n: int = 32) -> Any:
    """A small (anchor, positive) dataset with distinct texts."""
    from datasets import Dataset

    anchors = [f"{s} (item {i})" for i, s in enumerate(SENTENCES * (n // len(SENTENCES) + 1))][:n]
    positives = [f"About item {i}: {s.lower()}" for i, s in enumerate(SENTENCES * (n // len(SENTENCES) + 1))][:n]
    return Dataset.from_dict({"anchor": anchors, "positive": positives})


def train_steps(st_model: Any, out_dir: Path, *, steps: int = 3, lr: float = 5e-3, batch_size: int = 8) -> None:
    """Train a few steps with the stock SentenceTransformerTrainer and symmetric InfoNCE."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        warmup_steps=0,
        save_strategy="no",
        report_to=[],
        logging_steps=1,
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=st_model,
        args=args,
        train_dataset=pair_dataset(),
        loss=MultipleNegativesRankingLoss(
            st_model, scale=40.0, directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"
        ),
    )
    trainer.train()
