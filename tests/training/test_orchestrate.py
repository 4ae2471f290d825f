"""train: budget adherence per method, run dir contents, refusals, resume after SIGKILL, 2-process DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from st_recipe import StRecipeError
from st_recipe.planning.recipes import Recipe
from st_recipe.run import read_run
from st_recipe.training import checkpoint_dir, train

REPO = Path(__file__).resolve().parents[2]


def _recipe(model_dir, method="full", args=None, budget=8e9, **kw):
    base = dict(model=str(model_dir), method=method, method_args=args or {}, pairs=640, batch_size=16,
                learning_rate=1e-3, budget=budget, max_seq_length=32)
    base.update(kw)
    return Recipe(**base)


@pytest.mark.parametrize("method, args", [
    ("full", {}), ("freeze", {"blocks": 1}), ("bias", {}), ("lora", {"r": 4}), ("propulsion", {"degree": 10}),
    ("peft", {"peft_type": "ia3"}),
])
def test_every_method_spends_its_budget_and_writes_a_loadable_run_dir(tiny_neox_dir, tmp_path, method, args):
    from sentence_transformers import SentenceTransformer

    result = train(_recipe(tiny_neox_dir, method, args), "builtin", out=tmp_path / "run", quiet=True)
    rec = read_run(result.out)
    assert 0.99 <= rec.flops.spent_fraction <= 1.0, rec.flops
    assert rec.flops.stopped_by == "budget"
    assert rec.steps >= 40 and len(rec.loss.per_step) == rec.steps
    assert rec.recipe["method"] == method and rec.method.n_trainable > 0
    assert rec.heldout.before.pairs == rec.heldout.after.pairs == 500
    assert rec.tokens_seen > 0 and (rec.steps - 1) * 16 < rec.pairs_seen <= rec.steps * 16
    assert rec.random_init is False and rec.versions["torch"]
    assert rec.data.version == "v1" and rec.data.sha256
    model = SentenceTransformer(str(result.out))
    assert model.encode(["a sentence"]).shape == (1, 32)
    assert not checkpoint_dir(result.out).exists()  # cleaned after success
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("method, args", [
    ("full", {}), ("freeze", {"blocks": 1}), ("bias", {}), ("lora", {"r": 4}), ("propulsion", {"degree": 10}),
    ("peft", {"peft_type": "ia3"}),
])
def test_other_decoders_spend_their_budget(tiny_llama_dir, tiny_qwen_dir, tmp_path, arch, method, args):
    if arch == "llama" and method == "bias":
        pytest.skip("Llama has no biases: bias-only tuning is refused (tests/methods)")
    folder = tiny_llama_dir if arch == "llama" else tiny_qwen_dir
    result = train(_recipe(folder, method, args, budget=3e9), "builtin", out=tmp_path / "run", quiet=True)
    rec = result.record
    assert 0.99 <= rec.flops.spent_fraction <= 1.0, rec.flops
    assert rec.flops.stopped_by == "budget" and rec.steps >= 10


def test_random_init_is_recorded(tmp_path):
    result = train(Recipe(model="random:pythia-14m", method="bias", pairs=64, batch_size=8, budget=2e10,
                          learning_rate=1e-3, max_seq_length=16), "builtin", out=tmp_path / "r", quiet=True)
    rec = read_run(result.out)
    assert rec.random_init is True and rec.model.model == "random:pythia-14m"


def test_existing_out_is_refused_unless_overwrite(tiny_neox_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()  # an empty folder is fine without --overwrite
    train(_recipe(tiny_neox_dir, budget=2e9), "builtin", out=out, quiet=True)
    first = (out / "st_recipe.json").read_text()
    with pytest.raises(StRecipeError, match="already exists; pass --overwrite"):
        train(_recipe(tiny_neox_dir), "builtin", out=out, quiet=True)
    assert (out / "st_recipe.json").read_text() == first
    train(_recipe(tiny_neox_dir, budget=2.5e9), "builtin", out=out, overwrite=True, quiet=True)  # an earlier run
    assert (out / "st_recipe.json").read_text() != first


def test_overwrite_never_replaces_a_folder_that_is_not_a_run(tiny_neox_dir, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(StRecipeError, match="notes"):
            train(_recipe(tiny_neox_dir), "builtin", out=notes, overwrite=overwrite, quiet=True)
    assert [p.name for p in notes.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]  # no checkpoints or temporary folders


def test_out_that_cannot_be_written_is_one_line(tiny_neox_dir, tmp_path):
    for bad in ("/proc/st-recipe-run", ""):
        with pytest.raises(StRecipeError):
            train(_recipe(tiny_neox_dir), "builtin", out=bad, quiet=True)


def test_a_full_disk_during_a_checkpoint_is_one_line_and_leaves_no_checkpoint(tiny_neox_dir, tmp_path, monkeypatch):
    import errno

    import torch

    real_save = torch.save

    def full(obj, f, *a, **kw):
        if str(f).endswith("optimizer.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "run"
    with pytest.raises(StRecipeError, match=r"^no space left on device \(.*checkpoint-\d+\)$"):
        train(_recipe(tiny_neox_dir), "builtin", out=out, save_steps=2, quiet=True)
    ckpts = checkpoint_dir(out)
    assert not out.exists()
    assert not list(ckpts.glob("checkpoint-*")) and not list(ckpts.glob(".staging-*"))


def test_budget_too_small_for_one_step(tiny_neox_dir, tmp_path):
    with pytest.raises(StRecipeError, match="too small for one step"):
        train(_recipe(tiny_neox_dir, budget=1e6), "builtin", out=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_data_smaller_than_a_batch(tiny_neox_dir, tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"anchor": f"a {i}", "positive": f"p {i}"}) + "\n" for i in range(40)))
    with pytest.raises(StRecipeError, match="batch size"):
        train(_recipe(tiny_neox_dir, batch_size=64), str(data), out=tmp_path / "run", quiet=True)


RUNNER = textwrap.dedent(
    """
    import sys
    from st_recipe.planning.recipes import Recipe
    from st_recipe.training import train
    r = Recipe.load(sys.argv[1])
    train(r, "builtin", out=sys.argv[2], resume=sys.argv[3] == "resume", save_steps=4, quiet=True)
    """
)


def _run(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", RUNNER, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


def test_resume_after_sigkill_matches_an_uninterrupted_run(tiny_neox_dir, tmp_path):
    recipe_file = _recipe(tiny_neox_dir, "lora", {"r": 4}, budget=4e9).save(tmp_path / "r.yaml")
    straight = _run([str(recipe_file), str(tmp_path / "a"), "fresh"])
    killed = _run([str(recipe_file), str(tmp_path / "b"), "fresh"])
    ckpts = checkpoint_dir(tmp_path / "b")
    deadline = time.time() + 240
    while time.time() < deadline and not list(ckpts.glob("checkpoint-*/flop_meter.json")):
        time.sleep(0.2)
    assert list(ckpts.glob("checkpoint-*/flop_meter.json")), killed.communicate()[1][-2000:]
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "b").exists()  # nothing half-written
    resumed = _run([str(recipe_file), str(tmp_path / "b"), "resume"])
    for proc in (straight, resumed):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    a, b = read_run(tmp_path / "a"), read_run(tmp_path / "b")
    assert b.resumed is True
    assert a.flops.spent == pytest.approx(b.flops.spent, rel=1e-12)
    assert a.steps == b.steps
    assert len(b.loss.lr) == b.steps and b.loss.lr == pytest.approx(a.loss.lr, rel=1e-12)  # checkpoints keep the LRs
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys()
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) <= 1e-5


DDP = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from st_recipe.planning.recipes import Recipe
    from st_recipe.training import train
    res = train(Recipe.load(sys.argv[1]), "builtin", out=sys.argv[2], quiet=True)
    # One file per rank: the two processes' stdout can interleave in the launcher's pipe.
    Path(sys.argv[3], f"rank{os.environ['RANK']}.json").write_text(json.dumps({"empty": not res.record}))
    """
)


def test_two_process_ddp_counts_the_global_batch(tiny_neox_dir, tmp_path):
    recipe_file = _recipe(tiny_neox_dir, "lora", {"r": 4}, budget=4e9).save(tmp_path / "r.yaml")
    script = tmp_path / "ddp.py"
    script.write_text(DDP)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         str(recipe_file), str(tmp_path / "run"), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    empties = [json.loads((tmp_path / f"rank{r}.json").read_text())["empty"] for r in (0, 1)]
    assert empties == [False, True]  # only rank 0 writes the run dir
    rec = read_run(tmp_path / "run")
    assert rec.hardware.world_size == 2
    assert 0.99 <= rec.flops.spent_fraction <= 1.0
    # The final global batch is cut to the leading pairs that fit, the same count on each process.
    assert (rec.steps - 1) * 16 < rec.pairs_seen <= rec.steps * 16
    assert rec.flops.stopped_by == "budget"
