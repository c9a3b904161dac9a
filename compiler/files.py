"""Files: artefacts written safely, through a temporary file beside the target and a rename, so a crash
never leaves half a file and a symbolic link planted at the target (a checkout is a stranger's pull
request) is replaced, never written through; and what to say of an input that is not there."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def no_such(path: Path, kind: str = "file") -> str:
    """`no such file: data/x.pt`, naming the directory a relative path was looked up in (the current
    one: paths in a spec or a command line are read from where nncompile runs, not where the spec is)."""
    where = "" if path.is_absolute() else f" (looked for in the current directory, {Path.cwd()})"
    return f"no such {kind}: {path}{where}"


class OutputError(Exception):
    """The output path cannot be written: it is a directory, or lies under a file."""


def check_writable(path: Path) -> None:
    """Refuse a target that is a directory or whose parent is a file, before any work is done."""
    if path.is_dir() and not path.is_symlink():
        raise OutputError(f"{path} is a directory; give a file name")
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputError(f"{path} lies under {parent}, which is not a directory")
            break


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; on success it is renamed onto `path` (replacing
    a link there, not its target); on failure it is removed and `path` is left as it was."""
    path = Path(path)
    with _beside(path):
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def staging(path: str | Path) -> Iterator[Path]:
    """For a writer that puts more files beside the one it is given (ONNX: `model.onnx.data`, named
    after it): yield `path`'s name in a temporary folder beside it; on success every file written there
    is renamed into place beside `path` (as `replacing` does), the one named `path` last."""
    path = Path(path)
    with _beside(path):
        folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        staged = folder / path.name
        yield staged
        for written in sorted(folder.iterdir(), key=lambda file: file == staged):
            with replacing(path.parent / written.name) as temporary:
                os.replace(written, temporary)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _beside(path: Path) -> Iterator[None]:
    """Check `path` can be written and make its folder; what fails there (a read-only or special file
    system) is an OutputError naming `path`, not a crash."""
    check_writable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` through a temporary file and a rename."""
    with replacing(path) as temporary:
        temporary.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def append_line(path: str | Path, line: str) -> None:
    """Append one line to `path`, refusing to follow a symbolic link planted there."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    handle = os.open(path, flags, 0o666)
    with os.fdopen(handle, "a", encoding="utf-8") as file:
        file.write(line + "\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
