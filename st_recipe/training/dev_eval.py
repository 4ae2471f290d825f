"""Quality during training: a task file (the specs ``st-recipe eval --task-file`` reads) scored every F FLOPs.

Scoring goes through sentence-transformers' own evaluators (``EmbeddingSimilarityEvaluator`` for ``sts``,
``InformationRetrievalEvaluator`` for ``retrieval``) run by the trainer's ``evaluate``, so every
``report_to`` integration gets the scores. Each evaluation's forward FLOPs are metered from the attention
masks the encoder really sees and reported apart from the training budget; the record keeps
``{flops, step, score}`` per evaluation (the training FLOPs spent when it ran).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from st_recipe.costing.flops import lengths_from_mask
from st_recipe.errors import StRecipeError
from st_recipe.training.budget_state import BudgetState

DEFAULT_POINTS = 5  # evaluations per run when neither --eval-flops nor --eval-points is given
EVAL_BATCH_SIZE = 64


@dataclass(frozen=True)
class DevEval:
    """What to evaluate during training and how often (``every_flops`` or ``points`` per run)."""

    spec: str
    every_flops: float | None = None
    points: int | None = None

    def interval(self, budget: float) -> float:
        """Training FLOPs between evaluations."""
        return float(self.every_flops) if self.every_flops else budget / (self.points or DEFAULT_POINTS)


def check_dev_eval(spec: str | None, every_flops: float | None = None, points: int | None = None) -> DevEval | None:
    """Read and check the task file now (one-line errors before any model loads); None without a spec."""
    if spec is None:
        if every_flops is not None or points is not None:
            raise StRecipeError("--eval-flops and --eval-points set how often --eval-file is scored: give --eval-file")
        return None
    if every_flops is not None and points is not None:
        raise StRecipeError("give --eval-flops or --eval-points, not both")
    if every_flops is not None and (isinstance(every_flops, bool) or not math.isfinite(every_flops) or every_flops <= 0):
        raise StRecipeError(f"--eval-flops must be a positive number of FLOPs, not {every_flops!r}")
    if points is not None and (isinstance(points, bool) or not isinstance(points, int) or points < 1):
        raise StRecipeError(f"--eval-points must be an integer >= 1, not {points!r}")
    from st_recipe.evaluation.taskfiles import load_task_file, parse_task_file

    load_task_file(parse_task_file(spec))
    return DevEval(str(spec), every_flops, points)


def build_evaluator(spec: str) -> tuple[Any, str]:
    """The sentence-transformers evaluator for a task file, and the task's name."""
    from st_recipe.evaluation.taskfiles import load_task_file, parse_task_file

    data = load_task_file(parse_task_file(spec))
    if data.kind == "sts" and data.sts is not None:
        from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

        low, high = data.score_range or (0.0, 1.0)
        # Gold scores rescaled to [0, 1] as mteb does; Spearman (the main score) does not change.
        gold = [(s - low) / (high - low) for s in data.sts["score"]]
        return EmbeddingSimilarityEvaluator(data.sts["sentence1"], data.sts["sentence2"], gold, name=data.name,
                                            main_similarity="cosine", similarity_fn_names=["cosine"],
                                            batch_size=EVAL_BATCH_SIZE, write_csv=False), data.name
    if data.kind == "retrieval" and data.queries is not None and data.corpus is not None:
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

        queries = {q["id"]: q["text"] for q in data.queries}
        corpus = {d["id"]: f"{d.get('title') or ''} {d['text']}".strip() for d in data.corpus}
        relevant = {qid: {did for did, s in docs.items() if s > 0} for qid, docs in (data.qrels or {}).items()}
        return InformationRetrievalEvaluator(queries, corpus, relevant, name=data.name, batch_size=EVAL_BATCH_SIZE,
                                             write_csv=False, main_score_function="cosine"), data.name
    raise StRecipeError(f"--eval-file {spec!r}: {data.kind} task files cannot be scored during training")


def metered_evaluator(inner: Any, state: BudgetState, profile: Any) -> Any:
    """``inner`` wrapped so each call meters its forward FLOPs and adds a point to the state's dev curve."""
    from sentence_transformers.base.evaluation import BaseEvaluator

    class MeteredEvaluator(BaseEvaluator):
        """Runs the wrapped evaluator; reports ``dev_score`` and the evaluation FLOPs so far beside its metrics."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = inner
            self.greater_is_better = inner.greater_is_better
            self.primary_metric = "dev_score"

        def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1,
                     **kwargs: Any) -> dict[str, float]:
            spent = [0.0]

            def meter(module: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
                features = args[0] if args else kw.get("features", {})
                mask = features.get("attention_mask") if hasattr(features, "get") else None  # a dict or a BatchEncoding
                if mask is not None:
                    spent[0] += sum(profile.forward_flops(n) for n in lengths_from_mask(mask))

            # The first module is the transformer: every text the evaluator encodes passes through it once.
            handle = model[0].register_forward_pre_hook(meter, with_kwargs=True)
            try:
                metrics = inner(model, output_path=None, epoch=epoch, steps=steps)
            finally:
                handle.remove()
            score = float(metrics[inner.primary_metric])
            state.eval_flops += spent[0]
            point = {"flops": state.flops, "step": int(max(steps, 0)), "score": score}
            state.dev = [p for p in state.dev if p["step"] != point["step"]] + [point]
            return {**metrics, "dev_score": score, "dev_eval_flops": state.eval_flops}

    return MeteredEvaluator()


def dev_callback(base: type, state: BudgetState, every: float) -> Any:
    """A callback that asks the trainer to evaluate each time training crosses another ``every`` FLOPs, and at the end."""

    class DevEvalCallback(base):  # type: ignore[misc, valid-type]
        """Sets ``should_evaluate``; the trainer's own evaluate() then runs the metered evaluator and logs it."""

        def __init__(self) -> None:
            self.next_at = every

        def on_train_begin(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            # After a resume the next evaluation is the first multiple of ``every`` not yet reached.
            self.next_at = every * (math.floor(state.flops / every + 1e-9) + 1)

        def on_step_end(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            due = state.flops >= self.next_at * (1 - 1e-9)
            # The budget callback (earlier in the list) has already decided whether this step is the last one.
            last = control.should_training_stop or st.global_step >= st.max_steps
            if due or last:
                control.should_evaluate = True
            while self.next_at <= state.flops * (1 + 1e-9):
                self.next_at += every

    return DevEvalCallback()


def dev_record(dev: DevEval | None, task: str | None, state: BudgetState) -> dict[str, Any] | None:
    """The record's ``dev`` section: the task, how often it ran, the curve and the FLOPs it cost."""
    if dev is None:
        return None
    return {"task": task, "spec": dev.spec, "every_flops": dev.interval(state.budget), "points": list(state.dev),
            "eval_flops": state.eval_flops, "counted_in_budget": False}
