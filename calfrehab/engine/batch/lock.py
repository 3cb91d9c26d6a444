"""One recording batch at a time per audit trail.

Two ``batch --resume`` runs on one trail each looked up which cases the
trail already held, found the same ones missing, and both decided them:
5,752 decisions for 3,000 cases. A recording batch therefore holds an
exclusive lock on ``<trail>.batch-lock`` (``flock``, released by the
kernel when the process ends, however it ends) from before its first
look-up to after its last write. A second batch on the same trail is
refused at once with a message naming the process that holds it; single
decisions (``calfrehab next``) are not affected.

The lock is a file beside the trail rather than a lock on the trail
itself: SQLite takes POSIX locks on the database file, and on NFS
``flock`` is emulated with those same locks.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

from calfrehab.engine.errors import AuditError
from calfrehab.engine.errors import TrailBusyError as TrailBusyError
from calfrehab.engine.safeio import shown

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks here
    fcntl = None  # type: ignore[assignment]

__all__ = ["TrailBusyError", "TrailRunLock", "lock_path"]


def lock_path(trail: Path) -> Path:
    return trail.with_name(trail.name + ".batch-lock")


class TrailRunLock:
    """``with TrailRunLock(trail):`` — held for the whole run."""

    def __init__(self, trail: Path) -> None:
        self.path = lock_path(trail)
        self.fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise AuditError(
                f"cannot lock the audit trail ({shown(self.path)}): {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                text = os.pread(fd, 32, 0).decode("ascii").strip()
                holder = f" (process {int(text)})" if text else ""
            os.close(fd)
            raise TrailBusyError(
                f"another batch{holder} is recording into the audit trail "
                f"{shown(self.path.with_name(self.path.name.removesuffix('.batch-lock')))}; "
                "wait for it to finish (then --resume decides only what is left), "
                "or give this batch another --audit") from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def __enter__(self) -> TrailRunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
