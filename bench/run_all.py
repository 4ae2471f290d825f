"""Run every benchmark in turn (each in its own process) and summarise which ran and how long they took."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import _common as C

BENCHMARKS = ("cli_latency", "flop_meter", "budget_adherence", "memory", "train_overhead", "gpu_throughput")


def _cell(line: str) -> str:
    """A verdict line made safe for a table cell: no bold markers or pipes, first sentence only."""
    text = line.replace("**", "").replace("|", "\\|").strip(" .")
    return text.split(". ")[0]


def run(quick: bool, only: list[str] | None) -> str:
    """Run the selected benchmarks sequentially (never in parallel: they time things) and return the summary."""
    rows, failed = [], []
    for name in only or BENCHMARKS:
        argv = [sys.executable, str(C.REPO / "bench" / f"{name}.py")] + (["--quick"] if quick else [])
        print(f"== {name} ==", flush=True)
        t = time.perf_counter()
        proc = subprocess.run(argv, cwd=C.REPO)
        wall = time.perf_counter() - t
        path = C.result_path(name, quick, None)
        verdicts = []
        if proc.returncode == 0 and path.exists():
            # The bold "Target ..." lines are each benchmark's verdicts.
            verdicts = [_cell(line) for line in path.read_text().splitlines() if line.startswith("**")]
        else:
            failed.append(name)
        rows.append([name, proc.returncode, f"{wall:.0f}", path.relative_to(C.REPO) if path.exists() else "-",
                     "<br>".join(verdicts) or "-"])
    body = C.table(["benchmark", "exit", "wall s", "result file", "verdicts"], rows)
    if failed:
        body += f"\n**Failed: {', '.join(failed)}.**\n"
    return body


def main() -> None:
    """Run the benchmarks and write bench/results/run_all[.quick].md."""

    def extra(parser: Any) -> None:
        parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run only these benchmarks")

    args = C.parse_args(__doc__.splitlines()[0], extra)
    body = run(args.quick, args.only)
    C.write_result("run_all", "All benchmarks", body, quick=args.quick, out=args.out)
    if "**Failed" in body:
        sys.exit(1)


if __name__ == "__main__":
    main()
