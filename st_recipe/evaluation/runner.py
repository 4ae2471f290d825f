"""Running mteb: the encoder wrapper (true name and revision, OOM backoff), the result cache, failures, ``evaluate``.

Every score goes through mteb's own ``mteb.evaluate`` and ``ResultCache``, filed under the model's true
name and revision (``<cache>/results/<org>__<name>/<revision>/<Task>.json``), so re-running skips finished
tasks and two models never share a folder. One failing task never stops the others; once the Hub proves
unreachable, later built-in tasks read local caches only.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_recipe._io import cache_root
from st_recipe.errors import StRecipeError
from st_recipe.evaluation.distinct import DistinctTexts
from st_recipe.evaluation.local_data import TaskFile, is_local_task
from st_recipe.evaluation.local_data import score_range as check_score_range
from st_recipe.evaluation.models import LoadedModel, base_model, base_settings, load_model
from st_recipe.evaluation.summary import EvalSummary, TaskScore, save_summary
from st_recipe.evaluation.taskfiles import build_local_task, load_task_file, parse_task_file
from st_recipe.evaluation.tasks import PAPER_BENCHMARK, check_local_name, dedupe, resolve_tasks
from st_recipe.evaluation.width import check_truncate_dim
from st_recipe.models.args import compare_base_record
from st_recipe.run import RunDir

if TYPE_CHECKING:  # pragma: no cover
    from mteb import ResultCache

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------- OOM-safe encoding


def is_out_of_memory(exc: BaseException) -> bool:
    """True for accelerator out-of-memory errors (torch's OutOfMemoryError or its RuntimeError message)."""
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_accelerator_memory() -> None:
    if "torch" not in sys.modules:
        return
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def encode_with_backoff(encode: Callable[[int], Any], batch_size: int) -> tuple[Any, int]:
    """Call ``encode(batch_size)``, halving the batch size on out-of-memory until it fits; returns (result, batch size used)."""
    while True:
        try:
            return encode(batch_size), batch_size
        except Exception as exc:
            if not is_out_of_memory(exc) or batch_size <= 1:
                raise
            logger.warning("out of memory encoding at batch size %d; retrying with %d", batch_size, batch_size // 2)
        # Freed outside the except block: the traceback there still pins the failed batch's tensors.
        _free_accelerator_memory()
        batch_size //= 2


@functools.lru_cache(maxsize=1)
def _encoder_wrapper_class() -> type:
    import warnings

    from mteb.models import SentenceTransformerEncoderWrapper

    class StRecipeEncoder(SentenceTransformerEncoderWrapper):
        """mteb's ST wrapper with the model's true name/revision, an encode counter and OOM backoff."""

        def __init__(self, loaded: LoadedModel, batch_size: int) -> None:
            with warnings.catch_warnings():
                # mteb 2.26 trips its own deprecation warnings (a default argument, an ST method rename)
                # on every ST model it wraps; the user can do nothing about them.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                super().__init__(loaded.st_model)
            self.mteb_model_meta = self.mteb_model_meta.model_copy(
                update={"name": loaded.name, "revision": loaded.revision, "experiment_kwargs": loaded.experiment,
                        "adapted_from": loaded.adapted_from}
            )
            self.batch_size = batch_size
            self.encode_calls = 0
            self.distinct = DistinctTexts()

        def encode(self, inputs: Any, **kwargs: Any) -> Any:
            """Encode each distinct text once, halving the batch size for good whenever the accelerator runs out of memory."""
            self.encode_calls += 1
            texts = _plain_texts(inputs)
            if texts is None:
                return self._encode_loader(inputs, kwargs)
            return self.distinct.encode(texts, lambda todo: self._encode_loader(_text_loader(todo, inputs), kwargs),
                                        setting=self._setting(kwargs))

        def _encode_loader(self, inputs: Any, kwargs: dict[str, Any]) -> Any:
            def run(batch_size: int) -> Any:
                return SentenceTransformerEncoderWrapper.encode(self, inputs, **{**kwargs, "batch_size": batch_size})

            result, self.batch_size = encode_with_backoff(run, self.batch_size)
            return result

        def _setting(self, kwargs: dict[str, Any]) -> tuple[Any, ...]:
            # Everything besides the text that can change an embedding: the prompt (by task and side), the side
            # itself (encode_query vs encode_document) and the dimensions kept.
            meta = kwargs.get("task_metadata")
            prompt_type = kwargs.get("prompt_type")
            return (getattr(meta, "name", None), kwargs.get("hf_subset"), str(prompt_type),
                    getattr(self.model, "truncate_dim", None))

    return StRecipeEncoder


def _plain_texts(inputs: Any) -> list[str] | None:
    """The texts of a text-only mteb dataloader, in order; None for image, audio or video inputs."""
    features = getattr(getattr(inputs, "dataset", None), "features", None)
    if features is None or not {"image", "audio", "video"}.isdisjoint(features):
        return None
    texts = [text for batch in inputs for text in batch["text"]]
    return texts if all(isinstance(t, str) for t in texts) else None


def _text_loader(texts: list[str], like: Any) -> Any:
    """A dataloader of ``texts`` shaped like mteb's text loaders (batches of ``{"text": [...]}``)."""
    from datasets import Dataset
    from torch.utils.data import DataLoader

    return DataLoader(Dataset.from_dict({"text": texts}), batch_size=getattr(like, "batch_size", None) or 32)


# ------------------------------------------------------------------------------------------ failures


def _is_download_failure(task: Any, exc: BaseException) -> bool:
    """True when a built-in task failed because its data could not be fetched from the Hub."""
    if is_local_task(task):
        return False
    names = {cls.__name__ for cls in type(exc).__mro__}
    first = str(exc)
    return bool(names & {"ConnectionError", "DatasetNotFoundError", "OfflineModeIsEnabled", "LocalEntryNotFoundError",
                         "HfHubHTTPError", "Timeout", "HTTPError"}) or "Couldn't reach" in first or "offline" in first.lower()


def _describe_failure(task: Any, exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    first = first if len(first) <= 200 else first[:197] + "..."
    if _is_download_failure(task, exc):
        return f"could not load its data from the Hub ({first}); offline? evaluate a local copy with --task-file"
    return f"{type(exc).__name__}: {first}"


class _OfflineSwitch:
    """Once the Hub proves unreachable, later built-in tasks read only local caches.

    Without this every further task spends ~25 s in huggingface_hub's retries before failing the same way.
    """

    def __init__(self) -> None:
        self.saved: list[tuple[Any, Any]] | None = None

    def trip(self) -> None:
        """Switch huggingface_hub and datasets to offline mode for the rest of this evaluation."""
        if self.saved is not None:
            return
        self.saved = []
        for module_name in ("huggingface_hub.constants", "datasets.config"):
            module = sys.modules.get(module_name)
            if module is not None and hasattr(module, "HF_HUB_OFFLINE") and not module.HF_HUB_OFFLINE:
                self.saved.append((module, module.HF_HUB_OFFLINE))
                module.HF_HUB_OFFLINE = True
        if self.saved:
            logger.info("the Hub is unreachable: remaining built-in tasks use locally cached data only")

    def restore(self) -> None:
        """Put the libraries' offline flags back as they were."""
        for module, value in self.saved or []:
            module.HF_HUB_OFFLINE = value
        self.saved = None


# ------------------------------------------------------------------------------------------- running


def _task_score(task: Any, result: Any, cached: bool) -> TaskScore:
    splits = list(task.eval_splits)
    subsets = set(task.hf_subsets or ["default"])
    entries = [(s, e) for s in splits for e in result.scores.get(s, []) if e.get("hf_subset") in subsets]
    if not entries:  # aggregate tasks report one "default" subset whatever their metadata lists
        entries = [(s, e) for s in splits for e in result.scores.get(s, [])]
    if not entries:
        raise RuntimeError(f"no scores for splits {splits}")
    languages = sorted({lang for _, e in entries for lang in e.get("languages", [])})
    return TaskScore(
        task=task.metadata.name,
        type=task.metadata.type,
        main_score_name=task.metadata.main_score,
        # mteb rounds what it writes to 6 places; round fresh scores the same so a cached re-run reads identically.
        main_score=round(float(sum(e["main_score"] for _, e in entries) / len(entries)), 6),
        split=",".join(sorted({s for s, _ in entries})),
        subsets=sorted({e["hf_subset"] for _, e in entries}),
        languages=languages,
        source="local" if is_local_task(task) else "mteb",
        cached=cached,
    )


def _strategy(task: Any, meta: Any, cache: ResultCache, overwrite: bool) -> str:
    if overwrite:
        return "always"
    if is_local_task(task):
        # mteb reuses a complete cached result even when the dataset revision differs; an edited task
        # file must be re-run, so compare the file hash (the task's dataset revision) ourselves.
        cached = cache.load_task_result(task.metadata.name, meta)
        if cached is not None and cached.dataset_revision != task.metadata.revision:
            logger.info("%s: task file changed since the cached result; re-evaluating", task.metadata.name)
            return "always"
    return "only-missing"


def _run(loaded: LoadedModel, tasks: list[Any], cache: ResultCache, *, batch_size: int, overwrite: bool,
         progress: bool, label: str, offline: _OfflineSwitch) -> EvalSummary:
    import mteb
    from tqdm.auto import tqdm

    wrapper = _encoder_wrapper_class()(loaded, batch_size)
    meta = wrapper.mteb_model_meta
    summary = EvalSummary(model_name=loaded.name, revision=loaded.revision)
    bar = tqdm(tasks, desc=label, unit="task", disable=not progress, file=sys.stderr, leave=False)
    for task in bar:
        bar.set_postfix_str(task.metadata.name)
        before = wrapper.encode_calls
        try:
            result = mteb.evaluate(
                wrapper,
                task,
                cache=cache,
                overwrite_strategy=_strategy(task, meta, cache, overwrite),
                encode_kwargs={"batch_size": wrapper.batch_size, "show_progress_bar": False},
                show_progress_bar=False,
                co2_tracker=False,
                raise_error=True,
            )
            if result.exceptions:
                raise RuntimeError(result.exceptions[0].exception)
            summary.tasks.append(_task_score(task, result.task_results[0], cached=wrapper.encode_calls == before))
        except Exception as exc:  # noqa: BLE001 -- one failing task must not stop the others
            message = _describe_failure(task, exc)
            if _is_download_failure(task, exc):
                offline.trip()
            logger.info("%s failed: %s", task.metadata.name, message)
            summary.failed.append({"task": task.metadata.name, "error": message})
    bar.close()
    summary.batch_size = wrapper.batch_size
    return summary


def _default_cache(loaded: LoadedModel) -> Path:
    if loaded.run_dir is not None:
        return RunDir(loaded.run_dir).mteb_results
    return cache_root() / "mteb"


def evaluate(
    model: Any,
    *,
    benchmarks: Sequence[str] = (),
    tasks: Sequence[str] = (),
    task_files: Sequence[str | os.PathLike[str] | TaskFile] = (),
    batch_size: int = 32,
    cache_dir: str | os.PathLike[str] | None = None,
    compare_base: bool = False,
    overwrite: bool = False,
    model_name: str | None = None,
    progress: bool = True,
    score_range: tuple[float, float] | None = None,
    truncate_dim: int | None = None,
) -> EvalSummary:
    """Evaluate MODEL on benchmarks, mteb tasks and local task files with mteb; cache, summarise and save the results.

    ``truncate_dim`` evaluates the first D embedding dimensions only (Matryoshka models); its results are
    filed as an mteb experiment ``truncate_dim=D`` and its run-dir summary is ``eval_results_dim<D>.json``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise StRecipeError(f"batch size must be a positive integer, not {batch_size!r}")
    if truncate_dim is not None and (isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int) or truncate_dim < 1):
        raise StRecipeError(f"--truncate-dim must be a positive integer, not {truncate_dim!r}")
    if score_range is not None:
        score_range = check_score_range(score_range, "--score-range")
    # Everything cheap to check (names, files, model path) fails before any model is loaded.
    parsed = [load_task_file(parse_task_file(spec, score_range)) for spec in task_files]
    for data in parsed:
        check_local_name(data)
    if not benchmarks and not tasks and not parsed:
        benchmarks = (PAPER_BENCHMARK,)
    check_truncate_dim(model, truncate_dim)  # from config files: a too-wide D fails before mteb and the weights
    task_objs = dedupe(resolve_tasks(benchmarks, tasks) + [build_local_task(d) for d in parsed])
    if compare_base:
        compare_base_record(model)  # a run dir, or one line before any model loads
    loaded = load_model(model, model_name=model_name)
    if truncate_dim is not None:
        truncate(loaded, truncate_dim)

    import mteb

    cache_path = Path(os.path.expanduser(os.fspath(cache_dir))) if cache_dir else _default_cache(loaded)
    cache = mteb.ResultCache(cache_path)
    offline = _OfflineSwitch()
    try:
        summary = _run(loaded, task_objs, cache, batch_size=batch_size, overwrite=overwrite, progress=progress,
                       label=f"eval {loaded.name}", offline=offline)
        if compare_base:
            base_spec, pooling, normalize, seed = base_settings(loaded)
            max_len = loaded.st_model.max_seq_length
            loaded.st_model = None  # one model in memory at a time
            base = base_model(base_spec, pooling=pooling, max_seq_length=max_len, normalize=normalize, seed=seed)
            if truncate_dim is not None:
                truncate(base, truncate_dim)
            summary.base = _run(base, task_objs, cache, batch_size=batch_size, overwrite=overwrite, progress=progress,
                                label=f"eval base {base.name}", offline=offline)
    finally:
        offline.restore()
    summary.truncate_dim = truncate_dim
    if summary.base is not None:
        summary.base.truncate_dim = truncate_dim
    _finish(summary, loaded, cache_path)
    return summary


def truncate(loaded: LoadedModel, dim: int) -> None:
    """Make ``loaded`` encode its first ``dim`` dimensions (ST's ``truncate_dim``), filed as an mteb experiment."""
    full = loaded.st_model.get_embedding_dimension()
    if full is not None and dim > full:
        raise StRecipeError(f"--truncate-dim {dim} exceeds the model's embedding dimension {full}")
    loaded.st_model.truncate_dim = dim
    loaded.experiment = {**(loaded.experiment or {}), "truncate_dim": dim}


def _finish(summary: EvalSummary, loaded: LoadedModel, cache_path: Path) -> None:
    import mteb

    now = datetime.datetime.now(tz=datetime.UTC).isoformat(timespec="seconds")
    for s in (summary, summary.base):
        if s is not None:
            s.mteb_version, s.created = mteb.__version__, now
    if loaded.run_dir is not None:
        target = RunDir(loaded.run_dir).eval_summary
        if summary.truncate_dim is not None:
            target = target.with_name(f"{target.stem}_dim{summary.truncate_dim}{target.suffix}")
        # Relative inside the run dir: the summary may be published, and absolute paths leak a machine's layout.
        shown = cache_path.resolve()
        summary.cache_dir = str(shown.relative_to(loaded.run_dir)) if shown.is_relative_to(loaded.run_dir) else str(shown)
    else:
        safe = f"{loaded.name.replace('/', '__')}__{loaded.revision}"
        if summary.truncate_dim is not None:
            safe += f"__dim{summary.truncate_dim}"
        target = cache_path / "eval_summaries" / f"{safe}.json"
        summary.cache_dir = str(cache_path)
    if summary.base is not None:
        summary.base.cache_dir = summary.cache_dir
    for s in (summary, summary.base):
        for row in s.tasks if s is not None else []:
            row.created = now
        for item in s.failed if s is not None else []:
            item["created"] = now
    save_summary(summary, target)
