"""STS evaluation that encodes each distinct text once, against mteb's own encoder wrapper, on a real model.

An STS file over N documents rated pairwise (Lee's layout) holds N(N-1)/2 pairs, so 2 × that many texts of which
only N are distinct. ``st_recipe.evaluate`` (what ``st-recipe eval`` runs) encodes each distinct text once; mteb's
``SentenceTransformerEncoderWrapper`` encodes every text of every pair. Both run the same mteb task in one process
on SmolLM2-135M-Instruct (assets from ``bench/quality.py``); only the encoding differs, so the scores must agree.

    python bench/eval_dedup.py            # 20 Lee documents (190 pairs, 380 texts, 20 distinct)
    python bench/eval_dedup.py --docs 30  # 435 pairs, 870 texts, 30 distinct
    python bench/eval_dedup.py --docs 50  # all of Lee (1,225 pairs, 2,450 texts): the mteb wrapper takes minutes
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from pathlib import Path

import _common as C
import quality as Q


def sts_file(manifest: dict, docs: int, folder: Path) -> Path:
    """The first ``docs`` Lee documents, every pair with its human rating."""
    rows = [json.loads(x) for x in Path(manifest["eval"]["path"]).read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if "score" in r]
    texts = list(dict.fromkeys(t for r in rows for t in (r["sentence1"], r["sentence2"])))[:docs]
    score = {(r["sentence1"], r["sentence2"]): r["score"] for r in rows}
    out = folder / f"lee{docs}.jsonl"
    lines = [json.dumps({"score_range": [0, 1], "name": f"Lee{docs}"})]
    lines += [json.dumps({"sentence1": a, "sentence2": b, "score": score[(a, b)]}) for a, b in itertools.combinations(texts, 2)]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def main() -> None:
    args = C.parse_args(__doc__.splitlines()[0], lambda p: p.add_argument("--docs", type=int, default=20))
    C.quiet_libraries()
    import mteb
    import torch
    from mteb.models import SentenceTransformerEncoderWrapper

    from st_recipe.evaluation import evaluate
    from st_recipe.evaluation.models import load_model
    from st_recipe.evaluation.runner import _encoder_wrapper_class
    from st_recipe.evaluation.taskfiles import build_local_task, load_task_file, parse_task_file

    torch.set_num_threads(2)
    manifest = Q.prepare(C.REPO / ".assets")
    model_dir = Path(manifest["model"]["folder"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sts = sts_file(manifest, args.docs, folder)
        untrained = folder / "untrained"
        from st_recipe import build_encoder
        from st_recipe.encoder import save_encoder

        save_encoder(build_encoder(str(model_dir), max_seq_length=Q.MAX_LEN), untrained)
        spec = f"sts:{sts}"
        t0 = time.perf_counter()
        ours = evaluate(str(untrained), task_files=[spec], cache_dir=str(folder / "cache-ours"), progress=False)
        end_to_end_s = time.perf_counter() - t0

        loaded = load_model(str(untrained))
        task = build_local_task(load_task_file(parse_task_file(spec)))
        timings, scores = {}, {}
        for label, wrapper in (("plain", SentenceTransformerEncoderWrapper(loaded.st_model)),
                               ("ours", _encoder_wrapper_class()(loaded, 32))):
            t0 = time.perf_counter()
            result = mteb.evaluate(wrapper, task, cache=None, show_progress_bar=False, co2_tracker=False,
                                   encode_kwargs={"batch_size": 32, "show_progress_bar": False}, raise_error=True)
            timings[label] = time.perf_counter() - t0
            scores[label] = result.task_results[0].get_score()
    pairs = args.docs * (args.docs - 1) // 2
    plain_s, ours_s = timings["plain"], timings["ours"]
    rows = [["mteb's SentenceTransformerEncoderWrapper (every text)", f"{2 * pairs:,}", f"{plain_s:.1f}",
             f"{scores['plain']:.6f}", "1.0x"],
            ["st-recipe's encoder wrapper (distinct texts)", f"{args.docs:,}", f"{ours_s:.1f}",
             f"{scores['ours']:.6f}", f"{plain_s / ours_s:.1f}x"]]
    body = "\n".join([
        f"SmolLM2-135M-Instruct (untrained, mean pooling, length {Q.MAX_LEN}) on the first {args.docs} Lee documents: "
        f"{pairs:,} rated pairs. Wall time of `mteb.evaluate` on the same loaded model and task, only the encoder "
        "wrapper differs.", "",
        C.table(["encoder", "texts encoded", "wall s", "cosine Spearman", "speed-up"], rows), "",
        f"Scores agree to {abs(scores['plain'] - scores['ours']):.1e}. End to end, `st_recipe.evaluate` (what "
        f"`st-recipe eval` runs: loads the model, runs mteb, writes its result files) took {end_to_end_s:.1f} s and "
        f"scored {ours.tasks[0].main_score:.6f}.",
    ])
    C.write_result("eval_dedup", "STS evaluation: each distinct text encoded once", body, quick=args.quick,
                          out=args.out)


if __name__ == "__main__":
    main()
