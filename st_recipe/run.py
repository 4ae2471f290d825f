"""The run record (``st_recipe.json``) as types, and the run dir that holds it.

``train`` writes a :class:`RunRecord`; ``evaluate``, ``publish``, ``sweep`` and ``zoo`` read its typed
fields. The JSON layout is that of format 1 plus new fields, so records written by older versions still
load (missing fields take their defaults; :data:`FORMAT_VERSION` says which layout a file has).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from st_recipe._io import OutputLock, read_json_object, replace_dir
from st_recipe.errors import StRecipeError
from st_recipe.outputs import check_can_create, check_folder

RUN_RECORD = "st_recipe.json"
EVAL_SUMMARY = "eval_results.json"
MTEB_RESULTS = "mteb_results"
FORMAT_VERSION = 2

# A budget-trainer checkpoint: its files, how many are kept, and which one a resume takes.
TRAINABLE_STATE = "trainable_state.pt"
METER_STATE = "flop_meter.json"
CHECKPOINTS_KEPT = 2


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (staging folders and incomplete ones are ignored)."""
    if not root.is_dir():
        return None
    ckpts = [p for p in root.glob("checkpoint-*") if p.is_dir() and (p / METER_STATE).is_file()
             and p.name.split("-")[-1].isdigit()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[-1])) if ckpts else None


def _build(cls: type, data: Any, where: str) -> Any:
    """A dataclass from a dict, ignoring keys it does not know (a newer writer) and defaulting missing ones."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise StRecipeError(f"{where}: expected an object, not {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:  # a required field missing: the file was edited or cut short
        raise StRecipeError(f"{where}: malformed run record ({exc})") from None


@dataclass
class ModelInfo:
    """Where the base model came from."""

    model: str = ""
    load_id: str = ""
    random_init: bool = False


@dataclass
class MethodInfo:
    """The method, its arguments and its parameter counts (N, N_t exclude embeddings)."""

    name: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    cost_formula: str = ""

    @property
    def n_params(self) -> int:
        """Non-embedding parameters N."""
        return int(self.params.get("n_params", 0))

    @property
    def n_trainable(self) -> int:
        """Trainable non-embedding parameters N_t."""
        return int(self.params.get("n_trainable", 0))


@dataclass
class DataInfo:
    """What was trained on."""

    source: str = ""
    train_pairs: int = 0
    heldout_pairs: int = 0
    stats: dict[str, int] = field(default_factory=dict)
    epochs: float = 0.0
    version: str | None = None  # the built-in set's version, when source is builtin
    sha256: str | None = None
    # With hard negatives: per_pair, source ("data" or "mined"), pairs left out, and the mining report.
    hard_negatives: dict[str, Any] | None = None


@dataclass
class FlopsInfo:
    """Compute: the budget, what the meter counted, and what the hardware executed."""

    budget: float = 0.0
    planned: float = 0.0
    spent: float = 0.0
    spent_fraction: float = 0.0
    executed_with_padding: float = 0.0
    paper_formula: float = 0.0
    per_pair_estimate: float = 0.0
    profile: dict[str, Any] = field(default_factory=dict)
    stopped_by: str = ""
    not_counted: str | None = None
    mining_charged: float = 0.0  # hard-negative mining FLOPs charged to the budget (0: reported apart from it)


@dataclass
class HeldoutScore:
    """Symmetric InfoNCE and top-1 retrieval accuracy on held-out pairs."""

    infonce: float
    top1_accuracy: float
    pairs: int


@dataclass
class Heldout:
    """Held-out scores before and after training."""

    before: HeldoutScore | None = None
    after: HeldoutScore | None = None


@dataclass
class LossCurve:
    """Training loss per step, and beside it the learning rate the optimizer used at that step."""

    final: float | None = None
    per_step: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # empty in records written before the LRs were kept


@dataclass
class Hardware:
    """Where it ran."""

    platform: str = ""
    cpu_count: int | None = None
    world_size: int = 1
    gpu: str | None = None
    gpus: int | None = None


@dataclass
class RunRecord:
    """Everything a finished run reports; the content of ``st_recipe.json``."""

    # The recipe block as stored (``Recipe.to_dict()``): this lowest layer cannot import Recipe, and every record
    # must load; st_recipe.training.recorded_recipe(record) gives it as a validated Recipe.
    recipe: dict[str, Any]
    model: ModelInfo = field(default_factory=ModelInfo)
    method: MethodInfo = field(default_factory=MethodInfo)
    data: DataInfo = field(default_factory=DataInfo)
    flops: FlopsInfo = field(default_factory=FlopsInfo)
    heldout: Heldout = field(default_factory=Heldout)
    loss: LossCurve = field(default_factory=LossCurve)
    hardware: Hardware = field(default_factory=Hardware)
    versions: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT_VERSION
    status: str = "finished"
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    repo_id: str | None = None
    random_init: bool = False
    steps: int = 0
    planned_steps: int = 0
    pairs_seen: int = 0
    tokens_seen: int = 0
    wall_time_s: float = 0.0
    seed: int = 0
    gradient_checkpointing: bool = False
    resumed: bool = False
    # --eval-file: {task, spec, every_flops, points: [{flops, step, score}], eval_flops (apart from the budget)}
    dev: dict[str, Any] | None = None

    @property
    def base_model(self) -> str:
        """The base model as the recipe names it."""
        return str(self.model.model or self.recipe.get("model") or "")

    @property
    def is_random(self) -> bool:
        """True when the base weights were random (tests and demos)."""
        return bool(self.random_init or self.model.random_init or self.base_model.startswith("random:"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in the file's layout."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = RUN_RECORD) -> RunRecord:
        """Read any format version (1 or 2); unknown keys from newer writers are ignored."""
        fmt = data.get("format", 1)
        if not isinstance(fmt, int) or isinstance(fmt, bool):
            raise StRecipeError(f"{where}: malformed run record (format {fmt!r} is not a whole number)")
        if fmt > FORMAT_VERSION:
            raise StRecipeError(f"{where}: run record format {fmt!r} is newer than this st-recipe reads "
                                f"(up to {FORMAT_VERSION}); upgrade st-recipe")
        if not isinstance(data.get("recipe"), dict):
            raise StRecipeError(f"{where}: the run record has no recipe")
        held = data.get("heldout") or {}
        if not isinstance(held, dict):
            raise StRecipeError(f"{where}: malformed run record (heldout is {type(held).__name__}, not an object)")
        nested = {
            "model": _build(ModelInfo, data.get("model") or {}, where),
            "method": _build(MethodInfo, data.get("method") or {}, where),
            "data": _build(DataInfo, data.get("data") or {}, where),
            "flops": _build(FlopsInfo, data.get("flops") or {}, where),
            "heldout": Heldout(before=_build(HeldoutScore, held.get("before"), where),
                               after=_build(HeldoutScore, held.get("after"), where)),
            "loss": _build(LossCurve, data.get("loss") or {}, where),
            "hardware": _build(Hardware, data.get("hardware") or {}, where),
        }
        flat = {f.name for f in dataclasses.fields(cls)} - set(nested)
        try:
            return cls(**nested, **{k: v for k, v in data.items() if k in flat})
        except TypeError as exc:
            raise StRecipeError(f"{where}: malformed run record ({exc})") from None


class RunDir:
    """A run dir: a sentence-transformers model folder plus ``st_recipe.json``, checkpoints beside it.

    :meth:`check` and :meth:`prepare` own the rules for writing one (a lock, a file, an earlier run, --overwrite,
    --resume, unfinished checkpoints); :mod:`st_recipe.outputs` holds the part every output path shares.
    """

    def __init__(self, path: str | os.PathLike[str], *, given: str | None = None) -> None:
        self.path = Path(path)
        self.given = os.fspath(path) if given is None else given  # the name the user gave, for messages

    @classmethod
    def at(cls, out: str | os.PathLike[str]) -> RunDir:
        """The run dir an output name gives (``~`` expanded, made absolute); an empty name is refused."""
        if not str(out).strip():
            raise StRecipeError("the output folder (--out) must not be empty")
        # An absolute path gives '.' or 'runs/' a real name for the temporary siblings and checkpoints.
        return cls(os.path.abspath(os.path.expanduser(out)), given=os.fspath(out))

    @property
    def record_path(self) -> Path:
        """``st_recipe.json``."""
        return self.path / RUN_RECORD

    @property
    def checkpoints(self) -> Path:
        """Where checkpoints live while the run is unfinished: beside the run dir."""
        return self.path.with_name(self.path.name + ".checkpoints")

    @property
    def eval_summary(self) -> Path:
        """``eval_results.json``, written by ``st-recipe eval``."""
        return self.path / EVAL_SUMMARY

    @property
    def mteb_results(self) -> Path:
        """The mteb result cache of this run."""
        return self.path / MTEB_RESULTS

    def is_run(self) -> bool:
        """True when the folder holds a run record."""
        return self.record_path.is_file()

    def resumable(self) -> bool:
        """True when a complete checkpoint of an unfinished run lies beside the folder."""
        return latest_checkpoint(self.checkpoints) is not None

    def check_eval_writable(self) -> None:
        """May eval save its results in this run dir (its summary; without --cache, its mteb results)? Else one line."""
        check_can_create(self.given, "run dir", inside=True, hint=f"eval saves {EVAL_SUMMARY} (and, without --cache, "
                         f"{MTEB_RESULTS}/) in the run dir: copy it somewhere writable")

    def check(self, *, overwrite: bool = False, resume: bool = False) -> None:
        """May a run be written here? One line, nothing written, when it may not (train and the CLI ask it early)."""
        out, ckpt = self.path, self.checkpoints
        # First: while another run holds the folder, what it holds says nothing about what this run may do.
        OutputLock(out).check()
        if out.exists() or out.is_symlink():
            self._check_existing(overwrite=overwrite, resume=resume)
        # Only a complete checkpoint makes an unfinished run: a record alone (a run that failed or was killed
        # before its first checkpoint) has nothing to resume, and the run replaces it.
        if not resume and not overwrite and self.resumable():
            raise StRecipeError(f"{str(ckpt)!r} holds checkpoints of an unfinished run; pass --resume to continue "
                                "it or --overwrite to start again")
        check_folder(self.given, "--out")

    def _check_existing(self, *, overwrite: bool, resume: bool) -> None:
        out, ckpt = self.path, self.checkpoints
        if not out.is_dir():
            raise StRecipeError(f"output path {str(out)!r} is a file, not a folder")
        empty = not any(out.iterdir())
        if not overwrite and not empty:
            if resume and any(ckpt.glob("checkpoint-*")):
                # A killed --overwrite: the old run is still there and the new one's checkpoints beside it.
                raise StRecipeError(f"{str(out)!r} holds an earlier run and {str(ckpt)!r} an unfinished "
                                    "one: --resume --overwrite finishes the unfinished run and then replaces the "
                                    "earlier one; --overwrite alone deletes those checkpoints and starts again")
            raise StRecipeError(f"output folder {str(out)!r} already exists; pass --overwrite to replace it")
        if overwrite and not (self.is_run() or empty):
            # --overwrite must never wipe a folder of the user's that is not an earlier run.
            raise StRecipeError(f"refusing to replace {str(out)!r}: it is neither an earlier st-recipe run dir "
                                f"(no {RUN_RECORD}) nor empty; choose another --out")

    def prepare(self, *, overwrite: bool = False, resume: bool = False) -> None:
        """:meth:`check`, then make sure the folder can be written, and drop stale checkpoints unless resuming."""
        self.check(overwrite=overwrite, resume=resume)
        self.make_parent()
        try:
            # Probe with a real folder: access() says yes for root on read-only or virtual file systems.
            Path(tempfile.mkdtemp(prefix=f".{self.path.name}.probe-", dir=self.path.parent)).rmdir()
        except OSError as exc:
            raise self._unwritable(exc) from None
        if self.checkpoints.exists() and not resume:
            shutil.rmtree(self.checkpoints, ignore_errors=True)

    def make_parent(self) -> None:
        """Create the folder the run dir goes in (one line when it cannot be)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unwritable(exc) from None

    def _unwritable(self, exc: OSError) -> StRecipeError:
        return StRecipeError(f"cannot write the output folder {str(self.path)!r}: {exc.strerror or exc}")

    def read(self) -> RunRecord:
        """The finished run's record (one-line errors for anything else)."""
        if not self.path.is_dir():
            raise StRecipeError(f"run dir {str(self.path)!r} does not exist")
        if not self.is_run():
            raise StRecipeError(f"{str(self.path)!r} is not a finished st-recipe run (no {RUN_RECORD})")
        data = read_json_object(self.record_path)
        if data.get("status") != "finished":
            raise StRecipeError(f"run {str(self.path)!r} did not finish (status {data.get('status')!r})")
        return RunRecord.from_dict(data, where=str(self.record_path))

    def write(self, save_model: Callable[[Path], Any], record: RunRecord) -> None:
        """Save the model and the record into a temporary sibling, then swap it into place."""
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-", dir=self.path.parent))
        try:
            save_model(tmp)
            text = json.dumps(record.to_dict(), indent=2) + "\n"
            (tmp / RUN_RECORD).write_text(text, encoding="utf-8")
            replace_dir(tmp, self.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def read_run(path: str | os.PathLike[str]) -> RunRecord:
    """The typed record of a finished run dir."""
    return RunDir(path).read()
