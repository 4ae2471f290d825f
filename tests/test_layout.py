"""The package's shape: no import cycle between modules (imports inside functions included), no module over
~400 lines, no function over 80 lines, and no module outside the CLI importing it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "st_recipe"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every st_recipe module ``path`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import sub" names a submodule when pkg.sub is a module.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for t in targets:
            if t in known and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(path, name, known) for name, path in mods.items()}


def test_no_import_cycles():
    graph = _graph()
    # The package root only re-exports lazily by name; it is not part of the dependency graph.
    graph = {k: {d for d in v if d != "st_recipe"} for k, v in graph.items() if k != "st_recipe"}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_is_too_long():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_only_the_cli_imports_the_cli():
    offenders = {name for name, deps in _graph().items()
                 if not name.startswith("st_recipe.cli") and any(d.startswith("st_recipe.cli") for d in deps)}
    assert not offenders, f"modules importing the CLI: {sorted(offenders)}"


# The architecture, bottom to top: a module may import its own layer and the ones below, never one above.
LAYERS = (
    ("errors", "_io", "_text", "provenance", "hub", "outputs", "run"),
    ("models",),
    ("methods",),
    ("costing", "data"),
    ("planning",),
    ("encoder", "launch", "evaluation"),
    ("training",),
    ("publishing",),
    ("zoo", "sweeps"),
    ("cli",),
)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return next((i for i, names in enumerate(LAYERS) if len(parts) > 1 and parts[1] in names), None)


def test_every_module_has_a_layer():
    assert not [m for m in _modules() if m != "st_recipe" and _layer(m) is None]


def test_no_module_imports_a_higher_layer():
    upward = [f"{m} -> {d}" for m, deps in _graph().items() for d in sorted(deps)
              if _layer(m) is not None and _layer(d) is not None and _layer(d) > _layer(m)]
    assert not upward, "imports from a higher layer: " + "; ".join(upward)


def test_tests_mirror_the_package():
    """Each test folder is named after the package it tests, and each package has its test folder."""
    tests = Path(__file__).resolve().parent
    folders = {p.name for p in tests.iterdir() if p.is_dir() and any(p.glob("test_*.py"))} - {"scripts"}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert folders <= packages, f"test folders without a package: {sorted(folders - packages)}"
    assert packages <= folders, f"packages without a test folder: {sorted(packages - folders)}"

def test_the_walker_sees_imports_inside_functions(tmp_path):
    mod = tmp_path / "x.py"
    mod.write_text("def f():\n    from st_recipe.models.catalog import get_spec\n    import st_recipe.costing.flops\n")
    assert _imports(mod, "st_recipe.x", {"st_recipe.models.catalog", "st_recipe.costing.flops"}) == {"st_recipe.models.catalog", "st_recipe.costing.flops"}


MAX_FUNCTION_LINES = 80


def _long_functions(limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``module.py:line name (N lines)`` for every function or method in the package longer than ``limit``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_is_too_long():
    """Long orchestrators are split into named, documented steps (counted from ``def`` to the last line)."""
    long = _long_functions()
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: " + "; ".join(long)


def test_the_function_walker_counts_lines_and_methods(tmp_path, monkeypatch):
    pkg = tmp_path / "st_recipe"
    pkg.mkdir()
    (pkg / "m.py").write_text("def short():\n    a = 1\n    return a\n\n"
                              "class C:\n    def long(self):\n" + "".join(f"        x{i} = {i}\n" for i in range(5)))
    monkeypatch.setitem(globals(), "PACKAGE", pkg)
    assert _long_functions(limit=5) == ["st_recipe/m.py:6 long (6 lines)"]


def test_ruff_finds_nothing():
    """The package passes the ruff configuration in pyproject.toml (pyflakes and pycodestyle)."""
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it comes with the test extra)")
    out = subprocess.run([ruff, "check", "st_recipe"], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
