"""Atomic files and folders: the one writer every layer uses.

A file or folder is written under a temporary name beside its destination and
renamed over it only once complete, so a crash, a full disk or Ctrl-C leaves
either the old content or the new, never half of one. `tempfile` makes its
files 0600 and its folders 0700; what we write is meant to be shared (an
export copied into a container that runs as another user, a scored file), so
each gets the modes `open` and `mkdir` would give: 0666 and 0777 less the
process's umask (0644 and 0755 under the usual 022).

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> path = atomic_write_text(os.path.join(folder, "a.txt"), "hello\\n")
>>> path.read_text(), oct(path.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
('hello\\n', True)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = [
    "atomic_copy",
    "atomic_directory",
    "atomic_output",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "current_umask",
    "replace_directory",
]

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _UMASK_LOCK:  # elsewhere the only way to read it is to set it and set it back
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _share(path: str | Path, directory: bool = False) -> None:
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `path` (same suffixes) that replaces `path` on success.

    For writers that want a file name rather than a handle (Keras' `model.save`,
    matplotlib's `savefig`). The folder is made if missing; on failure the
    temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".tmp"
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _share(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: str = "w", encoding: str | None = "utf-8",
                  newline: str | None = None, sync: bool = False) -> Iterator[IO]:
    """Yields an open handle whose content replaces `path` once the block succeeds.

    Args:
        mode: "w" (text) or "wb" (bytes).
        sync: fsync before the rename (a long output a user waited for).
    """
    with atomic_path(path) as tmp:
        binary = "b" in mode
        with open(tmp, mode, encoding=None if binary else encoding,
                  newline=None if binary else newline) as handle:
            yield handle
            if sync:
                handle.flush()
                os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str, newline: str | None = None) -> Path:
    """Writes `text` (UTF-8) to `path` atomically; returns the path."""
    with atomic_output(path, "w", newline=newline) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Writes `data` to `path` atomically; returns the path."""
    with atomic_output(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_copy(source: str | Path, path: str | Path) -> Path:
    """Copies the file `source` to `path` atomically; returns the path."""
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)
    return Path(path)


def replace_directory(work: str | Path, final: str | Path) -> None:
    """Renames the folder `work` to `final`, replacing any `final` there.

    The old folder is renamed aside before the new one takes its name, so
    `final` is missing only between two renames, and removed afterwards.
    """
    work, final = Path(work), Path(final)
    _share(work, directory=True)
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        old.rmdir()
        final.rename(old)
        work.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        work.rename(final)


@contextlib.contextmanager
def atomic_directory(final: str | Path) -> Iterator[Path]:
    """Yields a temporary folder beside `final` that replaces `final` once the block succeeds.

    An earlier `final` survives a failed or interrupted block untouched, and
    the temporary folder is removed (unless the block moved it elsewhere).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield work
        replace_directory(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
