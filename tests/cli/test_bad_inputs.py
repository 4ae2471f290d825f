"""Every bad input through the real CLI: one ``error:`` line, exit code 2, nothing written, and fast.

Each case runs ``python -X importtime -m st_recipe.cli ...`` in its own seeded folder with
HF_HUB_OFFLINE=1 and an empty Hugging Face cache. The import log shows whether torch (or another heavy
library) was loaded before the error: the checks must come before those imports, which is what makes a
typo cost a fraction of a second instead of the 20-110 s a model load takes. The cases run concurrently
in a module-scoped fixture; each test then checks one of them.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from st_recipe.cli import main
from st_recipe.errors import StRecipeError
from st_recipe.hub import access as hub_access

HEAVY = {"torch", "transformers", "sentence_transformers", "peft", "datasets", "mteb", "matplotlib"}
OFFLINE = "HF_HUB_OFFLINE=1 is set"
HAS_PROC = Path("/proc").is_dir()


@dataclass(frozen=True)
class Case:
    """One bad command line and a fragment its error line must contain."""

    id: str
    args: tuple[str, ...]
    needle: str


def case(id: str, needle: str, *args: str) -> Case:
    return Case(id, tuple(args), needle)


TINY = ("--model", "random:pythia-14m", "--budget", "1e15")

CASES = [
    # train: output folder
    case("train-out-dot", "already exists", "train", *TINY, "--out", "."),
    case("train-out-proc", "cannot be written", "train", *TINY, "--out", "/proc/x"),
    case("train-out-empty", "must not be empty", "train", *TINY, "--out", ""),
    case("train-out-is-file", "is a file", "train", *TINY, "--out", "afile.txt"),
    case("train-out-existing-run", "pass --overwrite", "train", *TINY, "--out", "runs/done"),
    case("train-overwrite-notes", "neither an earlier st-recipe run dir", "train", *TINY, "--out", "notes", "--overwrite"),
    case("train-out-under-file", "is a file", "train", *TINY, "--out", "afile.txt/run"),
    # train: numbers
    case("train-save-steps-0", "--save-steps must be an integer >= 1", "train", *TINY, "--save-steps", "0"),
    case("train-save-steps-neg", "--save-steps must be an integer >= 1", "train", *TINY, "--save-steps", "-5"),
    case("train-batch-size-0", "in-batch negatives need at least two pairs", "train", *TINY, "--batch-size", "0"),
    case("train-batch-size-1", "--batch-size must be an integer >= 2", "train", *TINY, "--batch-size", "1"),
    case("train-batch-size-abc", "'abc' is not a valid integer", "train", *TINY, "--batch-size", "abc"),
    case("train-mini-batch-0", "--mini-batch-size must be an integer >= 1", "train", *TINY, "--mini-batch-size", "0"),
    case("train-lr-0", "learning_rate must be in (0, 1)", "train", *TINY, "--lr", "0"),
    case("train-temperature-0", "temperature must be in (0, 10]", "train", *TINY, "--temperature", "0"),
    case("train-seq-len-1", "max_seq_length must be an integer >= 2", "train", *TINY, "--max-seq-length", "1"),
    case("train-seed-neg", "seed must be an integer >= 0", "train", *TINY, "--seed", "-1"),
    case("train-budget-abc", "budget must be a number", "train", "--model", "random:pythia-14m", "--budget", "abc"),
    case("train-budget-neg", "finite positive", "train", "--model", "random:pythia-14m", "--budget", "-1"),
    case("train-budget-inf", "finite positive", "train", "--model", "random:pythia-14m", "--budget", "inf"),
    case("train-budget-0", "finite positive", "train", "--model", "random:pythia-14m", "--budget", "0"),
    case("train-budget-missing", "give --budget", "train", "--model", "random:pythia-14m"),
    case("train-budget-tiny", "the minimum is", "train", "--model", "random:pythia-14m", "--budget", "1e9"),
    case("train-unknown-option", "No such option", "train", *TINY, "--epochs", "3"),
    # train: repo id, recipes, zoo names
    case("train-repo-id-3-parts", "invalid repo id 'a/b/c'", "train", *TINY, "--repo-id", "a/b/c"),
    case("train-recipe-missing", "does not exist", "train", "--recipe", "missing.yaml"),
    case("train-recipe-malformed", "malformed", "train", "--recipe", "bad_recipe.yaml"),
    case("train-recipe-unknown", "unknown recipe", "train", "--recipe", "paper-9.6e99"),
    case("train-zoo-unknown", "unknown zoo entry 'nope'", "train", "--zoo", "nope"),
    case("train-recipe-and-zoo", "not both", "train", "--recipe", "paper-9.6e16", "--zoo", "pythia-14m-full-embed"),
    # train: models and methods
    case("train-model-unknown", "unknown", "train", "--model", "pythia-13m", "--budget", "1e15"),
    case("train-model-random-unknown", "unknown catalogue model", "train", "--model", "random:pythia-13m", "--budget", "1e15"),
    case("train-model-missing-path", "does not exist", "train", "--model", "./no/such/model", "--budget", "1e15"),
    case("train-model-folder-no-config", "no config.json", "train", "--model", "notes", "--budget", "1e15"),
    case("train-model-catalogue-offline", OFFLINE, "train", "--model", "pythia-14m", "--budget", "1e15"),
    case("train-model-hub-offline", OFFLINE, "train", "--model", "some-org/some-model", "--budget", "1e15"),
    case("train-default-model-offline", OFFLINE, "train", "--budget", "1e15"),
    case("train-method-unknown", "did you mean lora", "train", *TINY, "--method", "lorra"),
    case("train-lora-r-0", "rank r must be an integer >= 1", "train", *TINY, "--method", "lora", "--method-arg", "r=0"),
    case("train-freeze-1.5", "fraction must be a number > 0 and <= 1", "train", *TINY, "--method", "freeze",
         "--method-arg", "fraction=1.5"),
    case("train-method-arg-malformed", "key=value", "train", *TINY, "--method", "lora", "--method-arg", "r"),
    case("train-method-arg-unknown", "has no argument rank", "train", *TINY, "--method", "lora", "--method-arg", "rank=8"),
    # train: data
    case("train-data-missing", "data file not found: missing.jsonl", "train", *TINY, "--data", "missing.jsonl"),
    case("train-data-malformed-row", "line 2 is not valid JSON", "train", *TINY, "--data", "bad.jsonl"),
    case("train-data-folder", "is a directory", "train", *TINY, "--data", "notes"),
    case("train-data-wrong-type", "unsupported file type", "train", *TINY, "--data", "afile.txt"),
    case("train-data-hub-offline", OFFLINE, "train", *TINY, "--data", "some-org/some-pairs"),
    case("train-data-builtin-columns", "do not apply to the builtin pairs", "train", *TINY, "--anchor-column", "q"),
    case("train-data-wrong-column", "anchor", "train", *TINY, "--data", "pairs.jsonl", "--anchor-column", "nope"),
    # hard negatives
    case("train-hard-negatives-neg", "--hard-negatives must be an integer in [0, 64]", "train", *TINY,
         "--hard-negatives", "-1"),
    case("train-hard-negatives-none-in-data", "has no hard negatives", "train", *TINY, "--data", "pairs.jsonl",
         "--hard-negatives", "1"),
    case("train-hard-negatives-too-few", "only 0 pairs of 8 have 3 or more", "train", *TINY, "--data",
         "triplets.jsonl", "--hard-negatives", "3"),
    case("train-mine-negatives-0", "--mine-negatives must be an integer >= 1", "train", *TINY, "--mine-negatives", "0"),
    case("train-mine-and-hard", "not both", "train", *TINY, "--mine-negatives", "1", "--hard-negatives", "1"),
    case("train-mining-in-budget-alone", "needs --mine-negatives", "train", *TINY, "--mining-in-budget"),
    case("mine-num-negatives-0", "--num-negatives must be an integer in [1, 64]", "mine", "pairs.jsonl", "--model",
         "random:pythia-14m", "--out", "m.jsonl", "--num-negatives", "0"),
    case("mine-out-exists", "already exists; pass --overwrite", "mine", "pairs.jsonl", "--model", "random:pythia-14m",
         "--out", "pairs.jsonl"),
    case("mine-out-not-jsonl", "must be a .jsonl file", "mine", "pairs.jsonl", "--model", "random:pythia-14m",
         "--out", "m.csv"),
    case("mine-margin-1", "--relative-margin must be in [0, 1)", "mine", "pairs.jsonl", "--model", "random:pythia-14m",
         "--out", "m.jsonl", "--relative-margin", "1"),
    case("mine-absolute-margin-abc", "--absolute-margin must be a number or 'off'", "mine", "pairs.jsonl", "--model",
         "random:pythia-14m", "--out", "m.jsonl", "--absolute-margin", "abc"),
    case("mine-data-missing", "data file not found", "mine", "missing.jsonl", "--model", "random:pythia-14m",
         "--out", "m.jsonl"),
    # plan
    case("plan-budget-abc", "budget must be a number", "plan", "--budget", "abc"),
    case("plan-budget-neg", "positive", "plan", "--budget", "-1"),
    case("plan-budget-inf", "finite", "plan", "--budget", "inf"),
    case("plan-budget-0", "positive", "plan", "--budget", "0"),
    case("plan-budget-missing", "Missing option '--budget'", "plan"),
    case("plan-max-memory", "memory size '12XB'", "plan", "--budget", "1e17", "--max-memory", "12XB"),
    case("plan-model-unknown", "unknown model", "plan", "--budget", "1e17", "--model", "pythia-999m"),
    case("plan-batch-size-1", "--batch-size must be an integer >= 2", "plan", "--budget", "1e17", "--batch-size", "1"),
    case("plan-fitted-missing", "does not exist", "plan", "--budget", "1e17", "--fitted", "missing.yaml"),
    # methods
    case("methods-model-hub-offline", OFFLINE, "methods", "--model", "some-org/some-model"),
    case("methods-model-missing-path", "does not exist", "methods", "--model", "./no/such/dir"),
    case("methods-unknown-method", "unknown method 'loraa'", "methods", "--method-arg", "loraa.r=8"),
    case("methods-lora-r-0", "rank r must be an integer >= 1", "methods", "--method-arg", "lora.r=0"),
    case("methods-freeze-1.5", "fraction", "methods", "--method-arg", "freeze.fraction=1.5"),
    case("methods-arg-malformed", "METHOD.KEY=VALUE", "methods", "--method-arg", "lora"),
    # recipes
    case("recipes-show-unknown", "unknown recipe", "recipes", "show", "nope"),
    case("recipes-show-malformed", "malformed", "recipes", "show", "bad_recipe.yaml"),
    # eval
    case("eval-missing-path", "does not exist", "eval", "./no/such/model"),
    case("eval-hub-offline", OFFLINE, "eval", "some-org/some-model"),
    case("eval-not-a-model-folder", "is not a model folder", "eval", "notes"),
    case("eval-file", "is a file", "eval", "afile.txt"),
    case("eval-batch-size-0", "--batch-size must be an integer >= 1", "eval", "runs/done", "--batch-size", "0"),
    case("eval-task-file-missing", "task file 'missing.jsonl' does not exist", "eval", "runs/done", "--task-file", "missing.jsonl"),
    case("eval-score-range", "--score-range must look like LOW,HIGH", "eval", "runs/done", "--score-range", "abc"),
    case("eval-compare-base-not-run", "--compare-base needs a run dir", "eval", "notes", "--compare-base"),
    case("eval-compare-base-offline", OFFLINE, "eval", "runs/done", "--compare-base"),
    # publish
    case("publish-not-a-run", "is not a finished st-recipe run", "publish", "notes"),
    case("publish-missing", "does not exist", "publish", "no-such-run"),
    # fit
    case("fit-missing-dir", "does not exist", "fit", "no-such-sweep"),
    case("fit-no-results", "no finished cells", "fit", "notes"),
    case("fit-malformed-results", "line 1 is not a sweep result", "fit", "broken_sweep"),
    case("fit-out-missing-folder", "does not exist", "fit", "sweep", "--out", "missing/dir/x.yaml"),
    case("fit-out-is-folder", "is a folder", "fit", "sweep", "--out", "notes"),
    case("fit-plot-not-image", "ending in .png", "fit", "sweep", "--plot", "/proc/x"),
    case("fit-plot-unwritable", "cannot write", "fit", "sweep", "--plot", "/proc/x.png"),
    case("fit-metric", "Invalid value for '--metric'", "fit", "sweep", "--metric", "loss"),
    # sweep
    case("sweep-ranks-fraction", "'1.5' is not an integer >= 1", "sweep", "--budgets", "1e15", "--models",
         "random:pythia-14m", "--methods", "lora", "--ranks", "1.5", "--out", "sw"),
    case("sweep-ranks-0", "'0' is not an integer >= 1", "sweep", "--budgets", "1e15", "--models",
         "random:pythia-14m", "--methods", "lora", "--ranks", "0", "--out", "sw"),
    case("sweep-ranks-without-lora", "'lora' is not among the methods", "sweep", "--budgets", "1e15", "--models",
         "random:pythia-14m", "--methods", "full", "--ranks", "8", "--out", "sw"),
    case("sweep-out-is-file", "is a file", "sweep", "--budgets", "1e15", "--models", "random:pythia-14m",
         "--methods", "full", "--out", "afile.txt"),
    case("sweep-empty-budgets", "--budgets is empty", "sweep", "--budgets", "", "--models", "random:pythia-14m",
         "--methods", "full", "--out", "sw"),
    case("sweep-empty-models", "--models is empty", "sweep", "--budgets", "1e15", "--models", ",",
         "--methods", "full", "--out", "sw"),
    case("sweep-empty-methods", "--methods is empty", "sweep", "--budgets", "1e15", "--models", "random:pythia-14m",
         "--methods", " ", "--out", "sw"),
    case("sweep-unknown-method", "unknown method", "sweep", "--budgets", "1e15", "--models", "random:pythia-14m",
         "--methods", "full,nope", "--out", "sw"),
    case("sweep-freeze-1.5", "fraction", "sweep", "--budgets", "1e15", "--models", "random:pythia-14m",
         "--methods", "freeze", "--fractions", "1.5", "--out", "sw"),
    case("sweep-budget-tiny", "the minimum is", "sweep", "--budgets", "1e15,1e9", "--models", "random:pythia-14m",
         "--methods", "full", "--out", "sw"),
    case("sweep-model-offline", OFFLINE, "sweep", "--budgets", "1e15", "--models", "pythia-14m",
         "--methods", "full", "--out", "sw"),
    case("sweep-data-missing", "data file not found", "sweep", "--budgets", "1e15", "--models", "random:pythia-14m",
         "--methods", "full", "--data", "missing.jsonl", "--out", "sw"),
    case("sweep-batch-size-1", "--batch-size must be an integer >= 2", "sweep", "--budgets", "1e15", "--models",
         "random:pythia-14m", "--methods", "full", "--batch-size", "1", "--out", "sw"),
    # zoo
    case("zoo-build-unknown", "unknown zoo entry 'nope'", "zoo", "build", "nope", "--org", "o"),
    case("zoo-build-offline", OFFLINE, "zoo", "build", "pythia-14m-full-embed", "--org", "o"),
    case("zoo-build-bad-org", "invalid repo id", "zoo", "build", "pythia-14m-full-embed", "--org", "a/b"),
    case("zoo-build-builds-is-file", "is a file", "zoo", "build", "pythia-14m-full-embed", "--org", "o",
         "--builds", "afile.txt"),
    case("zoo-build-budget", "budget must be a number", "zoo", "build", "pythia-14m-full-embed", "--org", "o",
         "--budget", "abc"),
    case("zoo-build-publish-offline", "publishing o/pythia-14m-full-embed needs the Hugging Face Hub", "zoo", "build",
         "pythia-14m-full-embed", "--org", "o", "--model", "random:pythia-14m", "--budget", "1e12"),
]

NEEDS_PROC = {"train-out-proc", "fit-plot-unwritable"}


def _seed(root: Path) -> None:
    """A realistic working folder, so 'nothing written' is checked against real files."""
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "todo.txt").write_text("try lora at 1e17\n")
    done = root / "runs" / "done"
    done.mkdir(parents=True)
    (done / "st_recipe.json").write_text(json.dumps({"format": 1, "status": "finished", "recipe": {"model": "pythia-14m"}}))
    (done / "modules.json").write_text("[]")
    (root / "pairs.jsonl").write_text("".join(json.dumps({"anchor": f"q{i}", "positive": f"p{i}"}) + "\n" for i in range(8)))
    (root / "triplets.jsonl").write_text("".join(json.dumps({"anchor": f"q{i}", "positive": f"p{i}", "negative": f"n{i}"})
                                                 + "\n" for i in range(8)))
    (root / "bad.jsonl").write_text('{"anchor": "a", "positive": "b"}\nthis line is not JSON\n')
    (root / "bad_recipe.yaml").write_text("model: [pythia-14m\nmethod: full\n")
    (root / "afile.txt").write_text("just a file\n")
    sweep = root / "sweep"
    sweep.mkdir()
    rows = [{"cell": f"c{i}", "budget": b, "model": "pythia-14m", "method": "full", "config": "full()",
             "n_params": 1_189_888, "pairs": 100 * (i + 1), "heldout_loss": loss, "train_loss": loss}
            for i, (b, loss) in enumerate([(1e15, 2.0), (4e15, 1.6)])]
    (sweep / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "broken_sweep").mkdir()
    (root / "broken_sweep" / "results.jsonl").write_text("{not json\n")


def _snapshot(root: Path) -> dict[str, tuple[int, int] | str]:
    """Relative path -> (size, mtime) for files, 'dir' for folders."""
    out: dict[str, tuple[int, int] | str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = "dir" if path.is_dir() else (path.stat().st_size, path.stat().st_mtime_ns)
    return out


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "ST_RECIPE_", "XDG_CACHE"))}
    # An empty Hugging Face cache: a model cached on this machine must not make an offline case pass.
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(home / "hf"), XDG_CACHE_HOME=str(home / "cache"),
               ST_RECIPE_CACHE_DIR=str(home / "cache" / "st_recipe"), HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONDONTWRITEBYTECODE="1")
    return env


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    heavy: list[str]
    seconds: float
    before: dict
    after: dict


def _run_case(c: Case, base: Path) -> Outcome:
    work = base / c.id / "work"
    _seed(work)
    before = _snapshot(work)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "st_recipe.cli", *c.args], cwd=work,
                          env=_env(base / c.id), capture_output=True, text=True, timeout=300, check=False)
    seconds = time.perf_counter() - started
    stderr_lines, heavy = [], set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:"):
            name = line.rsplit("|", 1)[-1].strip()
            if name.split(".")[0] in HEAVY:
                heavy.add(name.split(".")[0])
        else:
            stderr_lines.append(line)
    return Outcome(proc.returncode, proc.stdout, "\n".join(stderr_lines), sorted(heavy), seconds, before,
                   _snapshot(work))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case, run concurrently (each in its own folder); keyed by case id."""
    base = tmp_path_factory.mktemp("bad-inputs")
    todo = [c for c in CASES if HAS_PROC or c.id not in NEEDS_PROC]
    with ThreadPoolExecutor(max_workers=max(2, min(6, (os.cpu_count() or 2) * 2))) as pool:
        results = list(pool.map(lambda c: _run_case(c, base), todo))
    return {c.id: r for c, r in zip(todo, results)}


def test_there_are_many_cases():
    assert len(CASES) >= 45 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(c: Case, outcomes: dict[str, Outcome]):
    if c.id not in outcomes:
        pytest.skip("needs /proc")
    r = outcomes[c.id]
    shown = f"args={c.args}\nstdout={r.stdout!r}\nstderr={r.stderr!r}"
    assert r.returncode == 2, shown
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0] != "error: ", shown
    assert c.needle in lines[0], shown
    assert "Traceback" not in r.stdout + r.stderr, shown
    assert r.after == r.before, f"files changed: {set(r.after.items()) ^ set(r.before.items())}"
    # The error comes before torch & co. are imported: this is what keeps it under a second.
    assert r.heavy == [], f"{c.id} imported {r.heavy} before failing"


def test_offline_errors_say_how_to_use_a_local_folder(outcomes: dict[str, Outcome]):
    for cid, hint in [("train-model-catalogue-offline", "--model DIR"), ("eval-hub-offline", "pass DIR as MODEL"),
                      ("train-data-hub-offline", "use a local file"), ("zoo-build-offline", "--model DIR")]:
        assert hint in outcomes[cid].stderr, outcomes[cid].stderr


def test_failing_fast_is_fast(outcomes: dict[str, Outcome]):
    # Loose on purpose (the cases run concurrently on a shared machine): a model load would take 20 s or more.
    slow = {cid: round(r.seconds, 1) for cid, r in outcomes.items() if r.seconds > 15}
    assert not slow, slow


# ----------------------------------------------------------------------------------------------------
# hub_access: the probe and the cache checks, without touching the network


class _Handler(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_HEAD(self) -> None:
        type(self).hits += 1
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fresh_probe():
    hub_access._probe.cache_clear()
    yield
    hub_access._probe.cache_clear()


def test_probe_counts_any_http_answer_as_reachable_and_asks_once(monkeypatch, fresh_probe):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        _Handler.hits = 0
        assert hub_access.hub_reachable() and hub_access.hub_reachable()
        assert _Handler.hits == 1
    finally:
        server.shutdown()
        server.server_close()


def test_probe_of_a_closed_port_is_unreachable_quickly(monkeypatch, fresh_probe):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    started = time.perf_counter()
    assert hub_access.unavailable_reason() == f"the Hub (http://127.0.0.1:{port}) is unreachable"
    assert time.perf_counter() - started < 5


def _fake_cached_model(cache: Path, repo_id: str) -> None:
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("abc123")
    (folder / "snapshots" / "abc123").mkdir(parents=True)
    (folder / "snapshots" / "abc123" / "config.json").write_text("{}")


def test_offline_use_of_a_cached_model_is_not_refused(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fake_cached_model(tmp_path, "org/cached")
    hub_access.require_model("org/cached")
    with pytest.raises(StRecipeError, match="HF_HUB_OFFLINE=1 is set"):
        hub_access.require_model("org/not-cached")


def test_unreachable_hub_with_a_cached_model_switches_to_the_cache(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_access, "hub_reachable", lambda timeout=0: False)
    _fake_cached_model(tmp_path, "org/cached")
    hub_access.require_model("org/cached")
    # The libraries now read the cache directly instead of retrying the network for minutes.
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True


def test_unreachable_hub_fails_commands_in_one_line(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_access, "hub_reachable", lambda timeout=0: False)
    monkeypatch.setattr(hub_access, "model_in_cache", lambda repo_id, revision=None: False)
    monkeypatch.setattr(hub_access, "dataset_in_cache", lambda repo_id: False)
    for args in (["methods", "--model", "some-org/some-model"],
                 ["train", "--model", "random:pythia-14m", "--budget", "1e15", "--data", "some-org/pairs",
                  "--out", str(tmp_path / "run")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "is unreachable" in errors[0], result.output


def test_a_cached_hub_dataset_is_left_to_datasets(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    (tmp_path / "org___pairs").mkdir()
    hub_access.require_dataset("org/pairs")
    with pytest.raises(StRecipeError, match="use a local file"):
        hub_access.require_dataset("org/other")
