"""Tests of the localhost Hub fixture, driven by the real huggingface_hub and sentence-transformers clients.

The clients read HF_ENDPOINT at import time, so each check runs them in a subprocess pointed at the server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub_server import HubServer

# The client reads these; an inherited value (offline mode, another endpoint, a proxy) would bypass the server.
_CLEARED_ENV_PREFIXES = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS_")
_CLEARED_ENV_KEYS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}

_PRELUDE = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path

    def result(obj):
        print("RESULT:" + json.dumps(obj))

    def raises(fn):
        try:
            fn()
        except Exception as err:
            return [cls.__name__ for cls in type(err).__mro__]
        return None
    """
)


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    """One server for the module; a small tree page size so listings exercise pagination."""
    with HubServer(tree_page_size=3) as server:
        yield server


def run_client(
    hub: HubServer, script: str, hf_home: Path, token: str | None = "write", timeout: float = 180, **env: str
) -> Any:
    """Run `script` in a fresh interpreter pointed at `hub`; return what it passed to result()."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_CLEARED_ENV_PREFIXES) and k.lower() not in _CLEARED_ENV_KEYS
    }
    full_env = {**base, **hub.client_env(str(hf_home), token=token), "TOKENIZERS_PARALLELISM": "false", **env}
    proc = subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(script)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(f"client failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")]
    assert lines, f"client printed no result:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT:") :])


def make_upload_folder(root: Path) -> dict[str, bytes]:
    """A card, a text file, a .safetensors (LFS by name) and a binary .dat (LFS by content)."""
    files = {
        "README.md": b"---\nlibrary_name: sentence-transformers\ntags:\n- fixture\n---\n# A test card\n",
        "notes.txt": b"plain text, stored as a regular git blob\n",
        "weights/model.safetensors": bytes(range(256)) * 40 + b"tail",
        "data/blob.dat": b"\x00\x01binary" * 50,
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def fixture_problems(hub: HubServer) -> list[dict[str, Any]]:
    """Requests the fixture had no route for (a client feature it lacks) or crashed on."""
    return [e for e in hub.request_log() if (e["error"] or "").startswith(("fixture: no route", "fixture error"))]


def test_upload_folder_is_one_commit_and_downloads_back(hub: HubServer, tmp_path: Path) -> None:
    """create_repo + upload_folder makes one commit (LFS for .safetensors) that downloads back byte-equal."""
    repo = "org/roundtrip"
    files = make_upload_folder(tmp_path / "up")
    out = run_client(
        hub,
        f"""
        from huggingface_hub import HfApi, ModelCard, hf_hub_download, snapshot_download
        api = HfApi()
        api.create_repo({repo!r}, exist_ok=True)
        api.create_repo({repo!r}, exist_ok=True)  # the second call hits the 409 path
        info = api.upload_folder(folder_path={str(tmp_path / "up")!r}, repo_id={repo!r}, commit_message="first")
        again = api.upload_folder(folder_path={str(tmp_path / "up")!r}, repo_id={repo!r}, commit_message="same")
        one = Path(hf_hub_download({repo!r}, "weights/model.safetensors")).read_bytes().hex()
        snap = Path(snapshot_download({repo!r}))
        snap_files = {{p.relative_to(snap).as_posix(): p.read_bytes().hex() for p in snap.rglob("*") if p.is_file()}}
        at_commit = Path(hf_hub_download({repo!r}, "notes.txt", revision=info.oid)).read_text()
        card = ModelCard.load({repo!r})
        meta = api.model_info({repo!r}, files_metadata=True)
        result({{
            "oid": info.oid, "again": again.oid, "one": one, "snap": snap_files, "at_commit": at_commit,
            "card": card.data.to_dict(), "card_data": meta.card_data.to_dict(),
            "lfs": sorted(s.rfilename for s in meta.siblings if s.lfs is not None),
            "missing": raises(lambda: hf_hub_download({repo!r}, "nope.txt")),
            "missing_rev": raises(lambda: hf_hub_download({repo!r}, "notes.txt", revision="f" * 40)),
            "tree": sorted(f.path for f in api.list_repo_tree({repo!r}, recursive=True)),
        }})
        """,
        tmp_path / "hf",
    )
    commits = hub.commits(repo)
    assert [c["title"] for c in commits] == ["first", "initial commit"]
    assert out["oid"] == commits[0]["oid"] == out["again"]  # an unchanged re-upload makes no commit
    stored = hub.repo_files(repo)
    assert {k: v for k, v in stored.items() if k != ".gitattributes"} == files
    assert hub.lfs_files(repo) == set(out["lfs"]) == {"weights/model.safetensors", "data/blob.dat"}
    assert bytes.fromhex(out["one"]) == files["weights/model.safetensors"]
    assert {k: bytes.fromhex(v) for k, v in out["snap"].items()} == stored
    assert out["at_commit"] == files["notes.txt"].decode()
    assert out["card"] == out["card_data"] == {"library_name": "sentence-transformers", "tags": ["fixture"]}
    assert "EntryNotFoundError" in out["missing"]
    assert "RevisionNotFoundError" in out["missing_rev"]
    assert out["tree"] == sorted([*stored, "weights", "data"])
    # The LFS blob comes from the CDN listener, and the client must not send it the token.
    cdn = [e for e in hub.request_log() if e["listener"] == "cdn"]
    assert cdn and not any(e["auth"] for e in cdn)
    assert not fixture_problems(hub)


@pytest.mark.parametrize("token", [None, "hf_not_a_real_token", "read"], ids=["anonymous", "wrong", "read-only"])
def test_writes_need_a_write_token(hub: HubServer, tmp_path: Path, token: str | None) -> None:
    """Without a token, with a wrong one or with a read token, create_repo and upload_folder raise."""
    repo = "org/locked"
    new_repo = f"org/new-{tmp_path.name}"
    if not hub.repo_exists(repo):
        hub.create_repo(repo)
    before = hub.commits(repo)
    make_upload_folder(tmp_path / "up")
    out = run_client(
        hub,
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        result({{
            "create": raises(lambda: api.create_repo({new_repo!r})),
            "upload": raises(lambda: api.upload_folder(folder_path={str(tmp_path / "up")!r}, repo_id={repo!r})),
            "commit": raises(lambda: api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id={repo!r})),
        }})
        """,
        tmp_path / "hf",
        token=token,
    )
    for key in ("create", "upload", "commit"):
        assert out[key] is not None and "HfHubHTTPError" in out[key], key
    assert hub.commits(repo) == before
    assert not hub.repo_exists(new_repo)


def test_private_repo_is_invisible_without_token(hub: HubServer, tmp_path: Path) -> None:
    """A private repo answers RepositoryNotFound to anonymous reads and serves files (LFS too) with the token."""
    repo = "org/private"
    files = make_upload_folder(tmp_path / "up")
    run_client(
        hub,
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo({repo!r}, private=True, exist_ok=True)
        api.upload_folder(folder_path={str(tmp_path / "up")!r}, repo_id={repo!r})
        result(api.model_info({repo!r}).private)
        """,
        tmp_path / "hf-w",
    )
    reads = f"""
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
        api = HfApi()
        out = {{
            "info": raises(lambda: api.model_info({repo!r})),
            "file": raises(lambda: hf_hub_download({repo!r}, "notes.txt")),
            "lfs": raises(lambda: hf_hub_download({repo!r}, "weights/model.safetensors")),
            "snapshot": raises(lambda: snapshot_download({repo!r})),
            "tree": raises(lambda: list(api.list_repo_tree({repo!r}))),
        }}
        if out["lfs"] is None:
            out["lfs_bytes"] = Path(hf_hub_download({repo!r}, "weights/model.safetensors")).read_bytes().hex()
        result(out)
    """
    anonymous = run_client(hub, reads, tmp_path / "hf-anon", token=None)
    for key, err in anonymous.items():
        assert err is not None and "RepositoryNotFoundError" in err, key
    with_token = run_client(hub, reads, tmp_path / "hf-read", token="read")
    assert bytes.fromhex(with_token.pop("lfs_bytes")) == files["weights/model.safetensors"]
    assert with_token == {"info": None, "file": None, "lfs": None, "snapshot": None, "tree": None}


@pytest.mark.parametrize("fault", ["commit_500", "lfs_put_403", "commit_500_after_apply"])
def test_failure_mid_upload_leaves_no_partial_commit(hub: HubServer, tmp_path: Path, fault: str) -> None:
    """A server error during upload_folder raises; nothing or the whole commit is visible, and a rerun converges."""
    repo = f"org/fault-{fault.replace('_', '-')}"
    hub.create_repo(repo)
    files = make_upload_folder(tmp_path / "up")
    script = f"""
        from huggingface_hub import HfApi
        api = HfApi()
        result(raises(lambda: api.upload_folder(folder_path={str(tmp_path / "up")!r}, repo_id={repo!r})))
    """
    hub.inject_fault(fault)
    try:
        assert run_client(hub, script, tmp_path / "hf") is not None
        assert hub.pending_faults() == {}
    finally:
        hub.clear_faults()  # a fault left behind would hit the next test
    if fault == "commit_500_after_apply":
        # The commit landed but its answer was lost: the client raised, yet the repo holds the whole commit.
        assert len(hub.commits(repo)) == 2
    else:
        assert [c["title"] for c in hub.commits(repo)] == ["initial commit"]
        assert set(hub.repo_files(repo)) == {".gitattributes"}
    # Rerunning the same upload is how a publisher recovers: it ends with exactly one upload commit.
    assert run_client(hub, script, tmp_path / "hf") is None
    assert len(hub.commits(repo)) == 2
    assert {k: v for k, v in hub.repo_files(repo).items() if k != ".gitattributes"} == files


def test_delete_patterns_deletions_and_parent_commit(hub: HubServer, tmp_path: Path) -> None:
    """upload_folder(delete_patterns=...) drops stale files in the same commit; a stale parent_commit is refused."""
    repo = "org/replace"
    up = tmp_path / "up"
    make_upload_folder(up)
    out = run_client(
        hub,
        f"""
        from huggingface_hub import CommitOperationAdd, HfApi
        api = HfApi()
        api.create_repo({repo!r})
        first = api.upload_folder(folder_path={str(up)!r}, repo_id={repo!r}, commit_message="v1").oid
        (Path({str(up)!r}) / "notes.txt").unlink()
        (Path({str(up)!r}) / "new.txt").write_text("new")
        api.upload_folder(folder_path={str(up)!r}, repo_id={repo!r}, commit_message="v2", delete_patterns="*")
        result({{
            "stale_parent": raises(lambda: api.create_commit(
                {repo!r}, [CommitOperationAdd("x.txt", b"x")], commit_message="x", parent_commit=first)),
            "delete_missing": raises(lambda: api.delete_file("absent.txt", repo_id={repo!r})),
        }})
        """,
        tmp_path / "hf",
    )
    assert [c["title"] for c in hub.commits(repo)] == ["v2", "v1", "initial commit"]
    assert set(hub.repo_files(repo)) == {
        ".gitattributes", "README.md", "new.txt", "weights/model.safetensors", "data/blob.dat"
    }
    assert "HfHubHTTPError" in out["stale_parent"]
    assert "EntryNotFoundError" in out["delete_missing"]


def _post(url: str, body: bytes, token: str | None, content_type: str) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


def test_commit_endpoint_enforces_auth_repo_and_lfs_objects(hub: HubServer) -> None:
    """Raw commits: 401 without/with a bad token, RepoNotFound, and a missing LFS object rejects the whole commit."""
    repo = "org/raw"
    hub.create_repo(repo)
    missing_oid = hashlib.sha256(b"never uploaded").hexdigest()
    lines = [
        {"key": "header", "value": {"summary": "raw commit", "description": ""}},
        {"key": "file", "value": {"path": "ok.txt", "content": base64.b64encode(b"ok").decode(), "encoding": "base64"}},
        {"key": "lfsFile", "value": {"path": "w.safetensors", "algo": "sha256", "oid": missing_oid, "size": 14}},
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    url = f"{hub.endpoint}/api/models/{repo}/commit/main"
    ndjson = "application/x-ndjson"
    assert _post(url, body, None, ndjson)[0] == 401
    assert _post(url, body, "hf_wrong", ndjson)[0] == 401
    status, headers = _post(f"{hub.endpoint}/api/models/org/absent/commit/main", body, hub.token, ndjson)
    assert (status, headers.get("X-Error-Code")) == (404, "RepoNotFound")
    status, headers = _post(url, body, hub.token, ndjson)
    assert status == 400 and "LFS pointer" in headers["X-Error-Message"]
    assert [c["title"] for c in hub.commits(repo)] == ["initial commit"]
    assert "ok.txt" not in hub.repo_files(repo)
    # Without the bad line the same commit goes through.
    status, _ = _post(url, body.rsplit(b"\n", 2)[0] + b"\n", hub.token, ndjson)
    assert status == 200 and hub.repo_files(repo)["ok.txt"] == b"ok"


# ----------------------------------------------------------------------------- sentence-transformers round trip


def build_tiny_sentence_transformer(out_dir: Path) -> Any:
    """A tiny random GPT-NeoX + byte-level BPE SentenceTransformer with mean pooling, built offline."""
    import tokenizers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    rng = random.Random(0)
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "vo", "pe", "zu", "da", "fi", "go", "he", "ju", "by"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(400)]
    corpus = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) + "." for _ in range(400)]
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    tokenizer.padding_side = "right"

    torch.manual_seed(0)
    config = transformers.GPTNeoXConfig(
        vocab_size=512,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    lm_dir = out_dir / "lm"
    transformers.GPTNeoXModel(config).save_pretrained(lm_dir)
    tokenizer.save_pretrained(lm_dir)
    transformer = Transformer(str(lm_dir), max_seq_length=32)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling], device="cpu")


_SENTENCES = ["a tiny test sentence", "another one, slightly longer than the first", "x"]


def test_sentence_transformer_push_and_load_by_repo_id(hub: HubServer, tmp_path: Path) -> None:
    """A saved tiny model pushed with upload_folder loads back by repo id with the same embeddings."""
    import torch

    repo = "org/tiny-st"
    model = build_tiny_sentence_transformer(tmp_path / "build")
    expected = model.encode(_SENTENCES, convert_to_tensor=True).cpu()
    model.save(str(tmp_path / "model"))
    run_client(
        hub,
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo({repo!r}, exist_ok=True)
        result(api.upload_folder(folder_path={str(tmp_path / "model")!r}, repo_id={repo!r}).oid)
        """,
        tmp_path / "hf-push",
    )
    assert "model.safetensors" in hub.lfs_files(repo)
    # A fresh cache and no token: what a user loading a public model sees.
    out = run_client(
        hub,
        f"""
        from huggingface_hub import ModelCard
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer({repo!r}, device="cpu")
        emb = model.encode({_SENTENCES!r}, convert_to_numpy=True)
        result({{
            "emb": emb.tolist(),
            "modules": [type(m).__name__ for m in model],
            "pooling": model[1].get_config_dict(),
            "card_library": ModelCard.load({repo!r}).data.library_name,
        }})
        """,
        tmp_path / "hf-load",
        token=None,
    )
    got = torch.tensor(out["emb"], dtype=expected.dtype)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-5
    assert out["modules"] == ["Transformer", "Pooling"]
    assert out["pooling"]["pooling_mode"] == "mean"
    assert out["card_library"] == "sentence-transformers"
    assert not fixture_problems(hub)
