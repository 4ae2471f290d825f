"""Shared pieces of the benchmarks: argument parsing, machine facts, markdown tables, result files."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"

# Benchmarks never reach the Hub; an accidental attempt should fail fast, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# The repo root first, so `python bench/x.py` works without an editable install and `tests.kit` imports.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LIBRARIES = ("st-recipe", "torch", "transformers", "sentence-transformers", "peft", "accelerate", "datasets")

# Every method configuration the benchmarks compare, in table order.
METHODS: list[tuple[str, dict[str, Any]]] = [
    ("full", {}),
    ("freeze", {"blocks": 1}),
    ("freeze", {"fraction": 0.5}),
    ("bias", {}),
    ("lora", {}),
    ("propulsion", {}),
    ("peft", {"peft_type": "ia3"}),
]


def parse_args(description: str, extra: Any = None) -> argparse.Namespace:
    """The common ``--quick`` / ``--out`` flags plus any the benchmark adds through ``extra(parser)``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller run (about a minute on a 2-core CPU)")
    parser.add_argument("--out", type=Path, default=None,
                        help="result file (default bench/results/<name>.md, or <name>.quick.md with --quick)")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def quiet_libraries() -> None:
    """Silence progress bars and chatter from the stack so the tables stay readable."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("transformers", "sentence_transformers", "st_recipe", "peft", "datasets", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, str]:
    """CPU model, cores, RAM and GPU (if torch sees one) of this machine."""
    info = {"cpu": cpu_model(), "cores": str(os.cpu_count())}
    try:
        import psutil

        info["cores"] = f"{psutil.cpu_count(logical=True)} logical / {psutil.cpu_count(logical=False)} physical"
        info["ram"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
        load = os.getloadavg()
        # The load average tells a reader whether other jobs shared the machine during the run.
        info["load average at start"] = f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
    except (ImportError, OSError):
        pass
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info["gpu"] = f"{torch.cuda.get_device_name(0)} ({props.total_memory / 2**30:.0f} GiB) × {torch.cuda.device_count()}"
        else:
            info["gpu"] = "none"
        info["torch threads"] = str(torch.get_num_threads())
    except ImportError:
        info["gpu"] = "unknown (torch not importable)"
    info["os"] = platform.platform()
    return info


def versions() -> dict[str, str]:
    """Python and library versions (from package metadata, so nothing heavy is imported)."""
    out = {"python": platform.python_version()}
    for pkg in LIBRARIES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def git_revision() -> str:
    """Short commit of the repo, with ``+dirty`` when the tree has changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "") if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def header(title: str, *, quick: bool, command: str) -> str:
    """The markdown preamble every result file starts with: date, machine, versions, command."""
    lines = [f"# {title}", "", f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
             f"- command: `{command}`{' (quick mode)' if quick else ''}", f"- st-recipe revision: {git_revision()}"]
    lines += [f"- {k}: {v}" for k, v in machine_info().items()]
    lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    return "\n".join(lines) + "\n"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table; numbers right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]

    def numeric(i: int) -> bool:
        return bool(rows) and all(_looks_numeric(r[i]) for r in rows)

    head = "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |"
    rule = "|" + "|".join(("-" * (w + 1) + ":") if numeric(i) else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    body = ["| " + " | ".join(c.rjust(w) if numeric(i) else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |" for r in rows]
    return "\n".join([head, rule, *body]) + "\n"


def _looks_numeric(text: str) -> bool:
    t = text.replace(",", "").replace("%", "").replace("+", "").replace("×", "").replace("s", "").strip()
    try:
        float(t)
        return True
    except ValueError:
        return t in ("", "-", "n/a")


def result_path(name: str, quick: bool, out: Path | None) -> Path:
    """Where a benchmark's markdown goes: quick runs never overwrite the full-run file."""
    if out is not None:
        return out
    return RESULTS / (f"{name}.quick.md" if quick else f"{name}.md")


def write_result(name: str, title: str, body: str, *, quick: bool, out: Path | None = None) -> Path:
    """Print the result (header + body) and write it to ``bench/results``."""
    command = "python bench/" + name + ".py" + (" --quick" if quick else "")
    text = header(title, quick=quick, command=command) + "\n" + body.rstrip() + "\n"
    path = result_path(name, quick, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(text)
    print(f"[written to {path.relative_to(REPO) if path.is_relative_to(REPO) else path}]")
    return path


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


def fmt_count(n: float) -> str:
    """``1,234,567``-style integer, or ``1.23e+15``-style for large floats."""
    return f"{n:.4g}" if abs(n) >= 1e12 else f"{int(round(n)):,}"


def fmt_pct(x: float, signed: bool = True) -> str:
    """A percentage with two decimals."""
    return f"{x * 100:+.2f} %" if signed else f"{x * 100:.2f} %"


def format_gib(n: float) -> str:
    """Bytes as GiB with one decimal."""
    return f"{n / 2**30:.1f} GiB"


def make_tiny_model(path: Path) -> Path:
    """The test kit's tiny random GPT-NeoX (hidden 32, 2 layers) saved to ``path``."""
    from tests.kit import make_tiny_gptneox

    return make_tiny_gptneox(path)
