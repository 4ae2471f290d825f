"""Mean-pooled sentence encoders from decoder-only language models, made of built-in ST modules only.

A model saved from here loads with ``SentenceTransformer(path)`` in a process that never imports
st_recipe and without ``trust_remote_code``: it is ``Transformer + Pooling (+ Normalize)``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from st_recipe._text import public
from st_recipe.errors import StRecipeError
from st_recipe.models.args import ModelRef, parse_model_spec
from st_recipe.models.catalog import build_random_model, suggest
from st_recipe.planning.recipes import ATTENTIONS

logger = logging.getLogger(__name__)
_WARNED_RANDOM: set[str] = set()

POOLING_MODES = ("mean", "lasttoken", "weightedmean")
PADDING_SIDES = ("right", "left")
# Attribute set on every encoder built here: where it came from, and whether its weights are random.
SOURCE_ATTR = "st_recipe_source"


def build_encoder(
    model: str,
    pooling: str = "mean",
    max_seq_length: int = 75,
    normalize: bool = False,
    *,
    padding_side: str = "right",
    seed: int = 0,
    revision: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    attention: str = "causal",
    prompts: dict[str, str] | None = None,
    include_prompt: bool = True,
) -> Any:
    """A ``SentenceTransformer`` (Transformer + Pooling [+ Normalize]) over a decoder-only LM.

    ``model`` is a catalogue name (``pythia-410m``), a Hub id, a local folder of any Hugging Face
    decoder, or ``random:<catalogue name>`` for a randomly initialised model of that shape.

    ``attention="bidirectional"`` sets ``is_causal: false`` in the decoder's config (transformers' own
    switch, saved in ``config.json`` and honoured by stock transformers on load); an architecture whose
    attention stays causal under that switch is refused. ``prompts`` (``{"query": ..., "document": ...}``)
    are stored on the model (``encode(..., prompt_name="query")``); ``include_prompt=False`` pools the text
    tokens only.
    """
    if attention not in ATTENTIONS:
        raise StRecipeError(f"attention must be causal or bidirectional, not {attention!r}")
    if pooling not in POOLING_MODES:
        raise StRecipeError(f"unknown pooling {pooling!r}{suggest(pooling, POOLING_MODES)}")
    if padding_side not in PADDING_SIDES:
        raise StRecipeError(f"padding side must be 'right' or 'left', not {padding_side!r}")
    if not isinstance(max_seq_length, int) or max_seq_length < 2:
        raise StRecipeError(f"max_seq_length must be an integer >= 2, not {max_seq_length!r}")
    ref = parse_model_spec(model)
    if ref.is_random:
        if ref.raw not in _WARNED_RANDOM:  # once per process: a sweep builds the same model for every cell
            _WARNED_RANDOM.add(ref.raw)
            logger.warning("%s: weights are randomly initialised, not pretrained (for tests and demos)", ref.raw)
        with tempfile.TemporaryDirectory(prefix="st_recipe_random_") as tmp:
            hf_model, tokenizer = build_random_model(ref.spec, seed=seed)  # type: ignore[arg-type]
            hf_model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            del hf_model
            st_model = _assemble(tmp, ref, pooling, max_seq_length, normalize, padding_side, model_kwargs, None,
                                 attention, include_prompt)
    else:
        st_model = _assemble(ref.load_id, ref, pooling, max_seq_length, normalize, padding_side, model_kwargs, revision,
                             attention, include_prompt)
    if prompts:
        from st_recipe.planning.recipes import check_prompts

        st_model.prompts = dict(check_prompts(dict(prompts)))
    return st_model


def _assemble(
    path: str,
    ref: ModelRef,
    pooling: str,
    max_seq_length: int,
    normalize: bool,
    padding_side: str,
    model_kwargs: dict[str, Any] | None,
    revision: str | None,
    attention: str = "causal",
    include_prompt: bool = True,
) -> Any:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    kwargs: dict[str, Any] = dict(model_kwargs or {})
    processor_kwargs: dict[str, Any] = {}
    if revision:
        kwargs["revision"] = revision
        processor_kwargs["revision"] = revision
    try:
        transformer = Transformer(
            path,
            max_seq_length=max_seq_length,
            model_kwargs=kwargs,
            processor_kwargs=processor_kwargs,
        )
    except (OSError, ValueError, KeyError) as exc:
        where = "folder" if ref.kind == "local" else "Hub model"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StRecipeError(f"could not load {where} {ref.raw!r} as a Hugging Face model: {first}") from exc
    if transformer.tokenizer is None:
        raise StRecipeError(f"model {ref.raw!r} has no tokenizer")
    _text_only(transformer)
    if not getattr(transformer.auto_model.config, "is_decoder", False) and not _is_causal(transformer.auto_model):
        logger.info("%s does not look like a decoder-only model; building the encoder anyway", ref.raw)
    tokenizer = configure_tokenizer(transformer.tokenizer, padding_side=padding_side, append_eos=pooling == "lasttoken")
    if tokenizer is not transformer.tokenizer:
        transformer.processor = tokenizer
        if hasattr(transformer.input_formatter, "processor"):
            transformer.input_formatter.processor = tokenizer
    if attention == "bidirectional":
        make_bidirectional(transformer.auto_model, ref.raw)
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling,
                                    include_prompt=include_prompt)]
    if normalize:
        modules.append(Normalize())
    st_model = SentenceTransformer(modules=modules, device="cpu")
    setattr(st_model, SOURCE_ATTR, {"model": ref.raw, "load_id": ref.load_id, "random_init": ref.is_random})
    return st_model


def _text_only(transformer: Any) -> None:
    """Pin the module to raw text, so a folder's chat template never wraps the texts to embed.

    sentence-transformers 6 turns every text into a chat message when the tokenizer has a chat template (an
    instruct model's system prompt and role markers then fill the 75-token window and enter the mean). The
    pinned ``modality_config`` is saved in ``sentence_bert_config.json``, so plain loading keeps raw text too.
    """
    config = getattr(transformer, "modality_config", None)
    if isinstance(config, dict) and "message" in config and "text" in config:
        transformer.modality_config = {k: v for k, v in config.items() if k != "message"}
        transformer.input_formatter.supported_modalities = list(transformer.modality_config)


def make_bidirectional(hf_model: Any, name: str = "") -> None:
    """Switch a decoder to bidirectional attention through its config (``is_causal = False``), or refuse it.

    transformers 5 reads ``config.is_causal`` in the models it wraps with ``merge_with_config_defaults``
    (the mask becomes a bidirectional one and SDPA/flash kernels get ``is_causal=False``). The switch is
    saved in ``config.json``, so stock transformers reloads the model bidirectional. Whether this
    architecture really honours it is checked on the model itself: changing the last token must change the
    first token's hidden state.
    """
    config = hf_model.config
    model_type = getattr(config, "model_type", type(hf_model).__name__)
    label = f"{name} ({model_type})" if name else model_type
    if getattr(config, "is_encoder_decoder", False):
        raise StRecipeError(f"--attention bidirectional: {label} is an encoder-decoder model, not a decoder")
    had, previous = hasattr(config, "is_causal"), getattr(config, "is_causal", None)
    config.is_causal = False
    if not _first_token_sees_last(hf_model):
        if had:
            config.is_causal = previous
        else:
            del config.is_causal
        import transformers

        raise StRecipeError(
            f"--attention bidirectional is not supported for {label}: transformers {transformers.__version__} ignores "
            "config.is_causal=False for this architecture (its attention stays causal), so the saved model would "
            "load causal; use --attention causal")


def _first_token_sees_last(hf_model: Any) -> bool:
    """Whether the first position's hidden state depends on the last token (true only for bidirectional attention)."""
    import torch

    vocab = int(getattr(hf_model.config, "vocab_size", 0) or getattr(hf_model.get_input_embeddings(), "num_embeddings", 0))
    if vocab < 8:
        raise StRecipeError("cannot check bidirectional attention: the model's vocabulary is too small")
    device = next(hf_model.parameters()).device
    ids = torch.tensor([[3, 4, 5, 6, 7]], device=device)
    changed = ids.clone()
    changed[0, -1] = 2
    mask = torch.ones_like(ids)
    was_training = hf_model.training
    hf_model.eval()
    try:
        with torch.no_grad():
            first = [hf_model(input_ids=x, attention_mask=mask).last_hidden_state[0, 0].float() for x in (ids, changed)]
    finally:
        hf_model.train(was_training)
    return bool((first[0] - first[1]).abs().max() > 1e-6 * max(1.0, float(first[0].abs().max())))


def _is_causal(hf_model: Any) -> bool:
    archs = getattr(hf_model.config, "architectures", None) or []
    return any(a.endswith("ForCausalLM") for a in archs) or hf_model.config.model_type in {
        "gpt_neox",
        "llama",
        "gpt2",
        "mistral",
        "qwen2",
        "qwen3",
        "gemma",
        "gemma2",
        "gemma3_text",
        "phi3",
        "olmo",
        "olmo2",
    }


def configure_tokenizer(tokenizer: Any, *, padding_side: str = "right", append_eos: bool = False) -> Any:
    """Give the tokenizer a pad token without adding one, an explicit padding side, and EOS when asked.

    Returns the tokenizer to use: the same object, or (to append EOS) a generic fast tokenizer whose
    ``tokenizer.json`` post-processor is authoritative on reload.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise StRecipeError("the tokenizer has neither a pad token nor an EOS token to pad with")
        # Reusing EOS keeps the vocabulary (and any adapter on the embeddings) unchanged; padding is
        # masked out of the pooled mean, so which id fills it does not matter.
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    # transformers 5 restores padding from tokenizer.json on reload, so record the side there too.
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is not None:
        backend.enable_padding(direction=padding_side, pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token)
    if append_eos:
        if tokenizer.eos_token is None:
            raise StRecipeError("last-token pooling needs an EOS token, and the tokenizer has none")
        # A decoder's last position only summarises the text if the text really ends in EOS. Model-specific
        # tokenizer classes (GPT-NeoX's among them) rebuild their post-processor on load and drop an
        # appended EOS, so hand the configured backend to the generic class, which keeps it.
        from tokenizers import processors
        from transformers import PreTrainedTokenizerFast

        eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
        # Keep a BOS the tokenizer puts first (Gemma's and Llama's do, from their post-processor, which is replaced
        # here): without it a model trained with BOS sees texts it was never trained on.
        bos, bos_id = tokenizer.bos_token, tokenizer.bos_token_id
        keep_bos = bos is not None and tokenizer("a")["input_ids"][:1] == [bos_id]
        lead = f"{bos}:0 " if keep_bos else ""
        special = {eos: eos_id, **({bos: bos_id} if keep_bos else {})}
        backend = tokenizer.backend_tokenizer
        backend.post_processor = processors.TemplateProcessing(
            single=f"{lead}$A:0 {eos}:0", pair=f"{lead}$A:0 {eos}:0 $B:1 {eos}:1", special_tokens=list(special.items())
        )
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=backend,
            bos_token=tokenizer.bos_token,
            eos_token=eos,
            unk_token=tokenizer.unk_token,
            pad_token=tokenizer.pad_token,
            padding_side=padding_side,
            model_max_length=tokenizer.model_max_length,
        )
    return tokenizer


def encoder_source(st_model: Any) -> dict[str, Any]:
    """Where an encoder built here came from (model spec, load id, random-init flag)."""
    return dict(getattr(st_model, SOURCE_ATTR, {}) or {})


def save_encoder(st_model: Any, path: str | os.PathLike[str]) -> Path:
    """Save a standard ST model folder with no local paths, an explicit padding side and the user's umask."""
    target = Path(path)
    st_model.save(str(target), create_model_card=False)
    scrub_local_paths(target, name=encoder_source(st_model).get("load_id"))
    _fix_tokenizer_config(target, st_model[0].tokenizer.padding_side)
    apply_umask(target)
    return target


# Keys transformers 5 writes that describe how *this* machine loaded the files, not the model.
_LOAD_TIME_KEYS = ("is_local", "local_files_only")


def _fix_tokenizer_config(folder: Path, padding_side: str) -> None:
    """Drop load-time keys and record the padding side where every tokenizer class reads it back."""
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in _LOAD_TIME_KEYS:
        config.pop(key, None)
    config["padding_side"] = padding_side
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def apply_umask(folder: Path) -> None:
    """Give a written folder the user's umask (temporary folders and some writers use 0700/0600).

    Published model folders are read by other users and by containers, so private modes are wrong here.
    """
    mask = os.umask(0)
    os.umask(mask)
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)


def scrub_local_paths(folder: Path, name: str | None = None) -> list[str]:
    """Replace absolute local paths in the folder's JSON files (they leak a machine's layout)."""
    changed: list[str] = []
    replacement = name if name and not os.path.isabs(name) else ""
    for json_path in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        cleaned = public(data, replacement)
        if cleaned != data:
            json_path.write_text(json.dumps(cleaned, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            changed.append(str(json_path.relative_to(folder)))
    return changed
