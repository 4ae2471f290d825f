"""Tests for scripts/mine_builtin_pairs.py, the one-off miner of the shipped builtin pairs (loaded by path)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

from st_recipe import data
from st_recipe.data import builtin

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mine_builtin_pairs.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mine_builtin_pairs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


mine = load_script()

BODY = "This body has plenty of ordinary English words so that it counts as a usable positive text."


def write_module(path: Path, docs: list[str]) -> None:
    """A Python file with one function per docstring, in order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    funcs = [f"def f{i}():\n    '''{doc}'''\n" for i, doc in enumerate(docs)]
    path.write_text('"""x"""\n\n' + "\n".join(funcs), encoding="utf-8")


def test_script_and_loader_agree_on_the_version() -> None:
    assert mine.VERSION == data.BUILTIN_VERSION
    assert mine.DATA_NAME == builtin._BUILTIN_FILE
    assert mine.DEFAULT_OUT_DIR == Path(data.__file__).resolve().parent
    assert [s.label for s in mine.SOURCES][0] == "stdlib" and len(mine.SOURCES) == 11
    assert set(mine.MINED_WITH) == {"python", "zlib"} | {s.label for s in mine.SOURCES if s.dist}


def test_docstring_cleaning() -> None:
    doc = '''Compute the thing from the inputs.

    The thing is computed by combining both inputs in a careful, well-tested way.
    See :func:`other` and ``code`` for details.

    Usage::

        compute(a, b)

    More prose after the literal block, which stays in the positive.

    Examples
    --------
    Everything in an examples section is dropped.

    >>> compute(1, 2)
    3
    '''
    anchor, positive = mine.docstring_pair(doc)
    assert anchor == "Compute the thing from the inputs."
    assert "careful, well-tested way" in positive and "See other and code for details." in positive
    assert ">>>" not in positive and "compute(a, b)" not in positive and "Examples" not in positive
    assert "Usage:" in positive and "Everything" not in positive
    assert "More prose after the literal block" in positive
    assert mine.docstring_pair("Too short.") is None
    assert mine.docstring_pair("Return the value of the thing.") == ("Return the value of the thing.", "")
    assert mine.docstring_pair("foo(a, b) -> int\n\nReturn the sum of a and b as an integer value please.") is None


def test_google_sections_directives_and_long_positives() -> None:
    doc = f"""Load the table from disk quickly.

    {BODY}

    Args:
        path: where the table lives on the local disk.

    .. code-block:: python

        load("x")

    Example:
        load("table.csv") returns the whole table at once.
    """
    anchor, positive = mine.docstring_pair(doc)
    assert anchor == "Load the table from disk quickly."
    assert positive.startswith(BODY) and "Args: path: where the table lives" in positive
    assert 'load("x")' not in positive and "table.csv" not in positive and ".." not in positive
    long_doc = "Summarise a very long docstring here.\n\n" + " ".join(["word"] * 1000)
    _, cut = mine.docstring_pair(long_doc)
    assert len(cut) <= mine.MAX_POSITIVE_CHARS and cut.endswith("word")


@pytest.mark.parametrize(
    "anchor",
    [
        "Copyright 2020 the authors of this module.",
        "compute(a, b, c) -> int",
        "Three words only.",
        "Parameters of this function are listed below:",
        "x = y + z * 2 // 3 ** 4 - (5 & 6) | 7",
        "Ünïcödé ïs nöt ënglïsh ënöügh här ïndëëd.",
    ],
)
def test_junk_anchors_are_rejected(anchor: str) -> None:
    assert not mine.good_anchor(mine.inline(anchor))
    assert mine.docstring_pair(f"{anchor}\n\n{BODY}") is None


def test_englishish() -> None:
    assert mine.englishish(BODY)
    assert not mine.englishish("{'a': [1, 2, 3], 'b': (4, 5)} == {**x}")
    assert not mine.englishish("+------+------+\n| 1.0  | 2.0  |")
    assert not mine.englishish("")


def test_dedupe_across_files_roles_and_case(tmp_path: Path) -> None:
    second_body = "A different body that still has more than enough words to be a positive."
    write_module(tmp_path / "pkg" / "a.py", [
        f"Compute the first thing here.\n\n{BODY}",
        f"compute   the FIRST thing here.\n\n{second_body}",  # same anchor up to case and spacing
        f"A brand new summary line here.\n\n{BODY.upper()}",  # same positive up to case
    ])
    write_module(tmp_path / "pkg" / "b.py", [
        # Kept: second_body was only in a dropped pair, so it is new here (as an anchor).
        f"{second_body}\n\n{BODY} And then some more words.",
        f"Another fine summary sentence.\n\n{second_body}",  # its positive is now an earlier anchor
        "Summary with no body at all.",
    ])
    write_module(tmp_path / "pkg" / "tests" / "c.py", [f"Hidden in a test folder here.\n\n{BODY}"])
    write_module(tmp_path / "pkg" / "test_d.py", [f"Hidden in a test file here.\n\n{BODY}"])
    (tmp_path / "pkg" / "broken.py").write_text('"""Not valid Python."""\ndef (:\n', encoding="utf-8")
    result = mine.mine([("toy", tmp_path / "pkg")])
    assert [(p.anchor, p.source) for p in result.pairs] == [
        ("Compute the first thing here.", "toy"),
        (second_body, "toy"),
    ]
    stats = result.stats["toy"]
    # Docstrings: a.py module + 3, b.py module + 3; the module docstring "x" is junk.
    assert (stats.docstrings, stats.kept, stats.duplicates, stats.no_body, stats.junk) == (8, 2, 3, 1, 2)
    files = [p.relative_to(tmp_path).as_posix() for p in mine.python_files(tmp_path / "pkg")]
    assert files == ["pkg/a.py", "pkg/b.py", "pkg/broken.py"]


def test_split_holds_out_the_lowest_anchor_hashes() -> None:
    pairs = [mine.Pair(f"Anchor number {i} of the toy pool.", f"Positive {i} " + BODY, "toy") for i in range(30)]
    train, test = mine.split_pairs(pairs)
    assert len(test) == mine.held_out_count(30) == 15 and len(train) == 15
    lowest = sorted(pairs, key=lambda p: mine.stable_hash(p.anchor))[:15]
    assert set(test) == set(lowest)
    assert train == [p for p in pairs if p not in set(test)]  # pool order is kept
    assert mine.held_out_count(8064) == 500 and mine.held_out_count(20000) == 1000
    assert mine.stable_hash("Some Text") == mine.stable_hash("some text")


def test_mining_and_writing_are_deterministic() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    roots = [("json", stdlib / "json"), ("email", stdlib / "email"), ("logging", stdlib / "logging")]
    first, second = mine.mine(roots), mine.mine(roots)
    assert first.pairs == second.pairs and len(first.pairs) > 100
    assert {p.source for p in first.pairs} == {"json", "email", "logging"}
    train, test = mine.split_pairs(first.pairs)
    raw = mine.encode(train, test)
    packed = mine.compress(raw)
    assert packed == mine.compress(mine.encode(*mine.split_pairs(second.pairs)))
    # No file name (FLG.FNAME), mtime 0 and OS "unknown", so the bytes carry nothing from this machine.
    assert packed[3] & 0x08 == 0 and packed[4:8] == b"\0\0\0\0" and packed[9] == 255
    rows = [json.loads(line) for line in gzip.decompress(packed).decode("utf-8").splitlines()]
    assert [r["split"] for r in rows] == ["train"] * len(train) + ["test"] * len(test)
    assert rows[0] == {"split": "train", "anchor": train[0].anchor, "positive": train[0].positive,
                       "source": train[0].source}


def test_main_writes_then_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    write_module(tmp_path / "src" / "m.py", [f"Summary number {i} of the toy module.\n\n{i} {BODY}" for i in range(40)])
    monkeypatch.setattr(mine, "source_roots", lambda: [("stdlib", tmp_path / "src")])
    out = tmp_path / "out"
    assert mine.main(["--out-dir", str(out), "--any-versions"]) == 0
    printed = capsys.readouterr().out
    packed = (out / mine.DATA_NAME).read_bytes()
    digest = hashlib.sha256(gzip.decompress(packed)).hexdigest()
    assert "20 train + 20 test = 40 pairs" in printed and digest in printed
    assert digest in (out / mine.MANIFEST_NAME).read_text(encoding="utf-8")
    assert mine.main(["--out-dir", str(out), "--check"]) == 0
    (out / mine.DATA_NAME).write_bytes(packed[:-1] + bytes([packed[-1] ^ 1]))
    assert mine.main(["--out-dir", str(out), "--check"]) == 1
    assert "differs" in capsys.readouterr().out


def test_refuses_to_overwrite_the_shipped_file_from_other_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mine, "installed_versions", lambda: {**mine.MINED_WITH, "numpy": "0.0"})

    def must_not_mine(*args, **kwargs):
        raise AssertionError("mined although the versions differ")

    monkeypatch.setattr(mine, "build", must_not_mine)
    assert mine.main([]) == 2


@pytest.mark.skipif(mine.installed_versions() != mine.MINED_WITH,
                    reason="the shipped pairs can only be reproduced with the versions they were mined with")
def test_reproduces_the_shipped_files_byte_for_byte() -> None:
    packed, manifest, train, test, _ = mine.build(mine.installed_versions())
    assert (len(train), len(test)) == (7564, 500)
    assert packed == (mine.DEFAULT_OUT_DIR / mine.DATA_NAME).read_bytes()
    assert manifest == (mine.DEFAULT_OUT_DIR / mine.MANIFEST_NAME).read_text(encoding="utf-8")
    assert hashlib.sha256(gzip.decompress(packed)).hexdigest() == data.BUILTIN_SHA256
