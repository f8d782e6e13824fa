"""Reading the small files the settings and the lockfile come from, safely.

A path a user names may be a FIFO (reading it waits for a writer that never comes), a device (``/dev/zero``
and ``/dev/full`` never end) or a file far larger than any settings or lockfile. :func:`read_small_file`
reads only regular files, up to a size limit, and never blocks on opening.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["FileProblem", "read_small_file", "shown_path"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileProblem(Exception):
    """Why a file cannot be read, to follow "cannot be read: ": ``it is a FIFO (named pipe), not a regular file``.

    ``missing`` is true when the file does not exist (callers usually say what to do about that).
    """

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 and limit % (1024 * 1024) == 0 else f"{limit} bytes"


def read_small_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file at ``path`` (symbolic links followed), at most ``limit`` of them.

    Raises :class:`FileProblem` for a missing file, anything that is not a regular file, a file larger than
    ``limit`` (also one that grows past it while being read) and any error the system reports.
    """
    try:
        # O_NONBLOCK: opening a FIFO for reading must not wait for a writer; it changes nothing for files.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileProblem("it does not exist", missing=True) from None
    except IsADirectoryError:
        raise FileProblem("it is a directory, not a regular file") from None
    except OSError as exc:
        raise FileProblem(exc.strerror or type(exc).__name__) from None
    try:
        info = os.fstat(descriptor)
        for test, kind in _KINDS:
            if test(info.st_mode):
                raise FileProblem(f"it is {kind}, not a regular file")
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem("it is not a regular file")
        if info.st_size > limit:
            raise FileProblem(f"it is larger than {_size(limit)}, far more than such a file ever holds")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(descriptor, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise FileProblem(f"it is larger than {_size(limit)}, far more than such a file ever holds")
        try:
            return b"".join(chunks)
        finally:
            chunks.clear()  # a credential file holds keys: no local keeps its bytes once they are returned
    except OSError as exc:
        raise FileProblem(exc.strerror or type(exc).__name__) from None
    finally:
        os.close(descriptor)


def shown_path(path: Path, home: Path | None) -> str:
    """``path`` as a person would write it: ``~/.ucloud/config.json`` when it lies under ``home``."""
    if home is not None:
        try:
            return str(Path("~") / path.relative_to(home))
        except ValueError:
            pass
    return str(path)
