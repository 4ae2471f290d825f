"""CLI latency: wall time of `st-recipe --help` and `st-recipe plan --budget 1e17` against a bare `python -c pass`.

Every command runs as a fresh subprocess, interleaved round-robin (so load from other jobs hits all of
them alike); the table shows medians and the spread. Target: each st-recipe command under 1 s.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import _common as C

TARGET_S = 1.0


def cli() -> list[str]:
    """The installed console script next to this interpreter, or the module entry point."""
    script = Path(sys.executable).with_name("st-recipe")
    if script.exists():
        return [str(script)]
    found = shutil.which("st-recipe")
    return [found] if found else [sys.executable, "-c", "from st_recipe.cli import main; main()"]


def time_once(argv: list[str]) -> float:
    """Wall seconds of one run of ``argv`` (output discarded; a failure aborts the benchmark)."""
    t = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=C.REPO)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.decode()[-2000:]}")
    return elapsed


HEAVY = ("torch", "transformers", "sentence_transformers", "peft", "datasets", "numpy")


def heavy_imports(cli_args: list[str]) -> list[str]:
    """Heavy libraries a CLI command imports (run in-process in a child, inspecting sys.modules)."""
    code = ("import sys\nfrom st_recipe.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', ','.join(m for m in %r if m in sys.modules))" % (cli_args, HEAVY))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=C.REPO).stdout
    line = [x for x in out.splitlines() if x.startswith("HEAVY")]
    return [m for m in line[-1].split(" ", 1)[1].split(",") if m] if line and " " in line[-1] else []


def run(quick: bool) -> str:
    """Time each command ``repeats`` times, interleaved, and return the markdown body."""
    repeats = 5 if quick else 15
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import st_recipe'": [sys.executable, "-c", "import st_recipe"],
        "st-recipe --help": cli() + ["--help"],
        "st-recipe plan --budget 1e17": cli() + ["plan", "--budget", "1e17"],
    }
    for argv in commands.values():  # one untimed run each: page cache and .pyc files warm
        time_once(argv)
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(repeats):
        for name, argv in commands.items():
            times[name].append(time_once(argv))
    bare = C.median(times["python -c pass"])
    rows, misses = [], []
    for name, ts in times.items():
        med = C.median(ts)
        is_cli = name.startswith("st-recipe")
        if is_cli and med >= TARGET_S:
            misses.append(f"{name} ({med:.2f} s)")
        rows.append([name, f"{med:.3f}", f"{min(ts):.3f}", f"{max(ts):.3f}", f"{med - bare:+.3f}",
                     ("yes" if med < TARGET_S else "NO") if is_cli else "-"])
    cols = ["command", "median s", "min s", "max s", "minus bare python s", f"under {TARGET_S:g} s"]
    verdict = "met" if not misses else "MISSED for " + ", ".join(misses)
    body = [
        f"{repeats} timed runs per command (after one untimed warm-up run each), interleaved round-robin;"
        f" each is a fresh process started with `subprocess.run`. CLI: `{' '.join(cli())}`.",
        "",
        C.table(cols, rows),
        f"**Target: median under {TARGET_S:g} s — {verdict}.**",
        "",
        "Notes:",
        "- heavy libraries loaded in-process by `--help`: "
        + (", ".join(heavy_imports(["--help"])) or "none")
        + "; by `plan --budget 1e17`: " + (", ".join(heavy_imports(["plan", "--budget", "1e17"])) or "none")
        + f" (checked among {', '.join(HEAVY)}). `plan` reads the built-in catalogue and recipe YAML only.",
    ]
    return "\n".join(body)


def main() -> None:
    """Run the benchmark and write bench/results/cli_latency[.quick].md."""
    args = C.parse_args(__doc__.splitlines()[0])
    C.write_result("cli_latency", "CLI latency", run(args.quick), quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
