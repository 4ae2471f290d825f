"""Small file helpers shared by the writers of run dirs, upload folders and plots."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

from st_recipe.errors import StRecipeError


def replace_dir(tmp: Path, target: Path) -> None:
    """Swap the finished folder ``tmp`` into ``target`` by renames, so ``target`` is never half-written."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Lay out, write and close a matplotlib figure (creating the parent folder)."""
    import matplotlib.pyplot as plt

    out = Path(path)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def loads_json(text: str, where: str) -> Any:
    """``json.loads`` whose every failure is one line, ``<where> is not valid JSON (<why>)``.

    The one place JSON text is parsed: besides syntax errors, the json module raises RecursionError
    for deeply nested values and a bare ValueError for integers longer than Python's digit limit.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno}, column {exc.colno}"
        why = f"{exc.msg} at {at}"
    except RecursionError:
        why = "nested too deeply to read"
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        why = str(exc).split(";")[0]
    raise StRecipeError(f"{where} is not valid JSON ({why})")


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding one object (one-line errors for unreadable, invalid or non-object content)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StRecipeError(f"{str(path)!r} is not readable JSON ({exc})") from None
    data = loads_json(text, repr(str(path)))
    if not isinstance(data, dict):
        raise StRecipeError(f"{str(path)!r} must hold a JSON object")
    return data


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` through a temporary sibling and a rename, so readers never see half a file."""
    import secrets

    target = Path(path)
    # Unique per call (not only per process): two threads or two writers never share a temporary file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def disk_full(exc: BaseException, where: str | os.PathLike[str]) -> bool:
    """Whether a failed write means the disk is full: ENOSPC anywhere in the exception chain, or little room left.

    The second test is for writers that drop the errno: torch's C++ writer raises a RuntimeError
    ("[enforce fail at inline_container.cc] ... file write failed") and safetensors' Rust writer an
    error of its own.
    """
    import errno

    err: BaseException | None = exc
    while err is not None:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        err = err.__cause__ or err.__context__
    probe = Path(where)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free < 16 * 2**20
    except OSError:
        return False


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON-lines file; one-line errors name the line."""
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise StRecipeError(f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        try:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                obj = loads_json(line, f"{path}:{number}")
                if not isinstance(obj, dict):
                    raise StRecipeError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
                if "\\u" in line:  # only an escape can make a lone surrogate, which no tokenizer takes
                    check_unicode(obj, f"{path}:{number}")
                yield number, obj
        except UnicodeDecodeError:
            raise StRecipeError(f"{path}: not UTF-8 text") from None


def check_unicode(value: Any, where: str) -> None:
    """Raise a one-line error naming the key when a string in ``value`` holds a lone surrogate (not encodable text)."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:  # a loop, not recursion: the JSON may be nested as deeply as json.loads allows
        key, item = stack.pop()
        if isinstance(item, dict):
            stack.extend((str(k), v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((key, v) for v in item)
        elif isinstance(item, str) and not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                named = f" {key!r}" if key else ""
                raise StRecipeError(f"{where}:{named} not valid Unicode text (a lone surrogate {item[exc.start]!r} at "
                                    f"character {exc.start + 1}); tokenizers reject it") from None


CACHE_ENV = "ST_RECIPE_CACHE_DIR"


def cache_root() -> Path:
    """st-recipe's one cache folder: $ST_RECIPE_CACHE_DIR, else $XDG_CACHE_HOME/st_recipe, else ~/.cache/st_recipe."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "st_recipe"


def write_together(text_path: Path, text: str, other_path: Path, render: Any) -> None:
    """Write a text file and a rendered file through temporary siblings, then rename both: both appear or neither."""
    import secrets

    temps: list[Path] = []
    target = text_path

    def temp_for(path: Path) -> Path:
        nonlocal target
        target = path
        tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
        tmp.open("x").close()  # fails here, before any rendering, if the folder is not writable
        temps.append(tmp)
        return tmp

    try:
        text_tmp = temp_for(text_path)
        text_tmp.write_text(text, encoding="utf-8")
        other_tmp = temp_for(other_path)
        render(other_tmp)
        os.replace(text_tmp, text_path)
        os.replace(other_tmp, other_path)
    except OSError as exc:
        raise StRecipeError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    finally:
        for tmp in temps:
            if tmp.exists():
                tmp.unlink()


class OutputLock:
    """An exclusive lock on an output folder for one process's lifetime: ``<folder>.lock``, holding the PID.

    It sits beside the folder (as the checkpoints do) because the folder itself is swapped in by a rename.
    Where ``fcntl`` exists the lock is a ``flock`` on that file, which the OS drops when the holder dies, so
    the file a killed run leaves behind is simply taken over; elsewhere the file is created with O_EXCL
    and one whose PID is no longer running is taken over.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder.with_name(self.folder.name + ".lock")
        self._fd: int | None = None

    def holder(self) -> int | None:
        """The PID of another live process holding the lock, else None (changes nothing)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            if _flock is None:
                pid = _read_pid(fd)
                return pid if pid is not None and pid != os.getpid() and pid_alive(pid) else None
            try:
                _flock.flock(fd, _flock.LOCK_SH | _flock.LOCK_NB)
            except OSError:
                pid = _read_pid(fd) or -1
                return None if pid == os.getpid() else pid  # this process's own lock (train checks under it)
            _flock.flock(fd, _flock.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def check(self) -> None:
        """Raise a one-line error naming the PID when another live process holds the lock."""
        self._refuse(self.holder())

    def acquire(self) -> None:
        """Take the lock, or raise a one-line error naming the PID that holds it."""
        while self._fd is None:
            try:
                fd = self._open()
            except FileExistsError:
                continue  # the O_EXCL path removed a stale file: try again
            except OSError as exc:
                raise StRecipeError(f"cannot create the lock file {str(self.path)!r}: {exc.strerror or exc}") from None
            if fd is None:
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd

    def _open(self) -> int | None:
        if _flock is None:
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._refuse(self.holder())
                self.path.unlink(missing_ok=True)  # its PID is gone: a stale lock
                raise
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _flock.flock(fd, _flock.LOCK_EX | _flock.LOCK_NB)
        except OSError:
            pid = _read_pid(fd)
            os.close(fd)
            self._refuse(pid or -1)
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file after we opened it: lock the new one
            os.close(fd)
            return None
        return fd

    def _refuse(self, pid: int | None) -> None:
        if pid is not None:
            who = f"PID {pid}" if pid > 0 else "another process"
            raise StRecipeError(f"{str(self.folder)!r} is in use by another st-recipe run ({who}, lock "
                                f"{str(self.path)!r}); wait for it to finish or choose another --out")

    def release(self) -> None:
        """Drop the lock and remove its file (removed first, so no one locks a file about to go)."""
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


try:
    import fcntl as _flock
except ImportError:  # pragma: no cover - Windows
    _flock = None  # type: ignore[assignment]


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode().strip() or "x")
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie awaiting its parent's reaping counts as ended)."""
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate it there; a stale file is then removed by hand
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True
    return True
