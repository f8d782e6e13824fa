"""Writing the lockfile: atomically (a reader sees the old file or the new one), one writer at a time.

A write holds an ``fcntl.flock`` on a sidecar ``.NAME.lock`` beside the lockfile's real target from reading
the old pins to renaming the new file (:func:`exclusive`), so two ``lock`` runs take turns and neither loses
the other's pin. A symbolic link is written through: its target is replaced, the link stays a link.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from .._errors import LockfileError
from .lockfile import Lockfile, lockfile_text

__all__ = ["LOCK_WAIT_SECONDS", "exclusive", "remove_stale_temporaries", "write_lockfile"]

# How long `lock` waits for another `lock` of the same lockfile to finish before giving up.
LOCK_WAIT_SECONDS = 300.0


def _target(path: Path) -> Path:
    """The file a lockfile path stands for: a symbolic link is followed, so the link stays a link."""
    return Path(os.path.realpath(path))


def _temporary_name(target: Path) -> re.Pattern[str]:
    """Temporary files of a write to ``target``: ``.NAME.XXXXXXXX.tmp`` next to it (mkstemp's 8 characters)."""
    return re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")


def remove_stale_temporaries(path: Path) -> list[str]:
    """Delete the temporary files a killed write left next to the lockfile; the names of those removed.

    Called only while holding the lockfile's lock (:func:`exclusive`), so no write in progress owns them.
    """
    target = _target(path)
    pattern = _temporary_name(target)
    removed: list[str] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


@contextlib.contextmanager
def exclusive(path: Path, *, wait: float = LOCK_WAIT_SECONDS, notice: TextIO | None = None) -> Iterator[None]:
    """Hold the lock on the lockfile at ``path`` for a read-modify-write: one ``lock`` at a time updates it.

    ``fcntl.flock`` on a sidecar file ``.NAME.lock`` next to the lockfile's real target (two links to one
    lockfile share one lock). The sidecar is removed on release; a waiter that then holds a lock on the
    removed file notices (its inode is no longer the path's) and locks the new one. Waits up to ``wait``
    seconds, saying so once on ``notice``; without ``fcntl`` (Windows) there is no lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    target = _target(path)
    sidecar = target.with_name(f".{target.name}.lock")
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            descriptor = os.open(sidecar, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise LockfileError(
                f"The lockfile {path} cannot be locked for writing ({exc.strerror or exc}); it was left unchanged."
            ) from None
        try:
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockfileError(
                            f"Another 'ucloud-images lock' has been updating {path} for {wait:g} s; it was left "
                            "unchanged (try again when that one is done)."
                        ) from None
                    if not told and notice is not None:
                        notice.write(f"ucloud-images: waiting for another 'ucloud-images lock' updating {path}\n")
                        notice.flush()
                        told = True
                    time.sleep(0.05)
            try:
                same = os.path.samestat(os.fstat(descriptor), os.stat(sidecar))
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(descriptor)
            raise
        if same:
            break
        os.close(descriptor)  # the holder before us removed this sidecar: lock the one at the path now
    try:
        remove_stale_temporaries(path)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(sidecar)
        os.close(descriptor)


def write_lockfile(
    path: Path,
    lockfile: Lockfile,
    previous: Lockfile | None = None,
    *,
    before_replace: Callable[[], None] | None = None,
) -> None:
    """Replace the lockfile atomically: readers see the old file or the new one, never a part of either.

    ``previous`` (the lockfile read under the same lock) makes sure history is only appended to.
    ``before_replace`` runs once the new file is on disk, just before it replaces the old one: the command
    reports the change there, so a report that cannot be written (a full disk) leaves the lockfile unchanged.

    A symbolic link is written through (its target is replaced; the link stays). The new text goes to a
    temporary file ``.NAME.XXXXXXXX.tmp`` beside the target, is flushed to disk and renamed over it; a failed
    write removes it, and one a killed process left is removed by the next ``lock``.
    """
    if previous is not None and lockfile.history[: len(previous.history)] != previous.history:
        raise LockfileError(f"The lockfile {path} was left unchanged: its history may only be appended to.")
    text = lockfile_text(lockfile)
    target = _target(path)
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    except OSError as exc:
        raise LockfileError(f"The lockfile {path} cannot be written: {exc.strerror or exc}.") from None
    temp: str | None = None
    try:
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
        if before_replace is not None:
            before_replace()
        os.replace(temp, target)
        temp = None
    except OSError as exc:
        raise LockfileError(
            f"The lockfile {path} cannot be written ({exc.strerror or exc}); it was left unchanged."
        ) from None
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    with contextlib.suppress(OSError):  # make the rename itself durable
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
