"""st-recipe eval on the command line: --compare-base, offline built-in tasks, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.evaluation.helpers import invoke, one_error_line, write_retrieval, write_sts


def test_cli_compare_base_shows_both_columns(fresh_run: Path, sts_file: Path, retrieval_dir: Path, tiny_neox_dir: Path) -> None:
    result = invoke(str(fresh_run), "--task-file", str(sts_file), "--task-file", f"retrieval:{retrieval_dir}",
                    "--compare-base")
    assert result.exit_code == 0, result.output
    print(result.stdout)  # the table, for the report (pytest -s)
    header = next(ln for ln in result.stdout.splitlines() if ln.startswith("task "))
    assert header.split() == ["task", "type", "metric", "score", "base", "diff", "note"]
    assert f"vs base local/{tiny_neox_dir.name}" in result.stdout
    saved = json.loads((fresh_run / "eval_results.json").read_text())
    assert saved["base"]["model_name"] == f"local/{tiny_neox_dir.name}"
    trained = {t["task"]: t["main_score"] for t in saved["tasks"]}
    base = {t["task"]: t["main_score"] for t in saved["base"]["tasks"]}
    assert trained.keys() == base.keys() == {"tiny-sts", "tiny-retrieval"} and trained != base
    results = fresh_run / "mteb_results" / "results"
    assert sorted(p.name for p in results.iterdir()) == sorted([f"local__{tiny_neox_dir.name}", "st-recipe__tiny-run"])
    # the base is filed as an experiment (mean pooling, the run's sequence length) of its own name
    assert list((results / f"local__{tiny_neox_dir.name}").glob("*/experiments/max_seq_length_32__pooling_mean/tiny-sts.json"))

    as_json = invoke(str(fresh_run), "--task-file", str(sts_file), "--task-file", f"retrieval:{retrieval_dir}",
                     "--compare-base", "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["base"]["tasks"]


def test_cli_offline_builtin_task_fails_in_one_line_and_the_rest_run(fresh_run: Path, sts_file: Path, tmp_path: Path) -> None:
    result = invoke(str(fresh_run), "--tasks", "BIOSSES", "--task-file", str(sts_file), "--cache", str(tmp_path / "c"))
    assert result.exit_code == 1, result.output
    failed = [ln for ln in result.output.splitlines() if ln.startswith("failed:")]
    assert len(failed) == 1 and failed[0].startswith("failed: BIOSSES: ") and "--task-file" in failed[0]
    assert "Traceback" not in result.output
    summary = json.loads((fresh_run / "eval_results.json").read_text())
    assert [t["task"] for t in summary["tasks"]] == ["tiny-sts"]
    assert [f["task"] for f in summary["failed"]] == ["BIOSSES"]


def test_cli_bad_inputs_are_one_line_errors(tmp_path: Path, run_dir: Path, sts_file: Path, retrieval_dir: Path) -> None:
    run = str(run_dir)
    assert "paper-15" in one_error_line(invoke(run, "--benchmark", "paper15"))
    assert "Banking77Classification" in one_error_line(invoke(run, "--tasks", "STS12,Banking77Clasification"))

    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n\n{"sentence1": "a", oops}\n')
    assert f"{bad_json}:3 is not valid JSON" in one_error_line(invoke(run, "--task-file", f"sts:{bad_json}"))

    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a", "score": 2}\n')
    assert f"{missing}:2: 'sentence2'" in one_error_line(invoke(run, "--task-file", f"sts:{missing}"))

    out_of_range = write_sts(tmp_path / "range.jsonl", header={"score_range": [0, 5]})
    lines = out_of_range.read_text().splitlines()
    lines[4] = json.dumps({"sentence1": "x", "sentence2": "y", "score": 7})
    out_of_range.write_text("\n".join(lines) + "\n")
    message = one_error_line(invoke(run, "--task-file", str(out_of_range)))
    assert f"{out_of_range}:5: score 7 is outside the declared range [0, 5]" in message
    # the flag declares a range too (and overrides the header)
    flagged = one_error_line(invoke(run, "--task-file", str(sts_file), "--score-range", "0,1"))
    assert "outside the declared range [0, 1]" in flagged
    assert "--score-range" in one_error_line(invoke(run, "--task-file", str(sts_file), "--score-range", "five"))

    bad_qrels = write_retrieval(tmp_path / "bad-retrieval")
    (bad_qrels / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\tnope\t1\n")
    assert "qrels.tsv:3: corpus-id 'nope'" in one_error_line(invoke(run, "--task-file", f"retrieval:{bad_qrels}"))
    (tmp_path / "empty").mkdir()
    assert "lacks queries.jsonl, corpus.jsonl" in one_error_line(invoke(run, "--task-file", f"retrieval:{tmp_path / 'empty'}"))
    assert "does not exist" in one_error_line(invoke(run, "--task-file", str(tmp_path / "nope.jsonl")))
    assert "BIOSSES-local=PATH" in one_error_line(invoke(run, "--task-file", f"biosses={sts_file}"))

    not_model = tmp_path / "not-a-model"
    not_model.mkdir()
    (not_model / "notes.txt").write_text("hello")
    assert "is not a model folder" in one_error_line(invoke(str(not_model), "--task-file", str(sts_file)))
    assert "is a file" in one_error_line(invoke(str(not_model / "notes.txt"), "--task-file", str(sts_file)))
    assert "does not exist" in one_error_line(invoke("./no/such/model", "--task-file", str(sts_file)))
    assert "--compare-base needs a run dir" in one_error_line(
        invoke(str(not_model), "--task-file", str(sts_file), "--compare-base"))
    # The CLI or evaluate() itself may catch it first; either way the line names the batch size.
    assert re.search(r"batch[ -]size", one_error_line(invoke(run, "--task-file", str(sts_file), "--batch-size", "0")))
