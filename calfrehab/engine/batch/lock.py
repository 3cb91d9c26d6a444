"""One recording batch at a time per audit trail.

Two ``batch --resume`` runs on one trail each looked up which cases the
trail already held, found the same ones missing, and both decided them:
5,752 decisions for 3,000 cases. A recording batch therefore holds an
exclusive lock on ``<trail>.batch-lock`` from before its first look-up to
after its last write. A second batch on the same trail is refused at once
with a message naming the process that holds it; single decisions
(``calfrehab next``) are not affected.

The lock is the ``filelock`` package's (flock on POSIX, msvcrt on Windows,
where the hand-written flock took no lock at all), released by the kernel
when the process ends, however it ends. It is a file beside the trail
rather than a lock on the trail itself: SQLite takes POSIX locks on the
database file, and on NFS ``flock`` is emulated with those same locks.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from calfrehab.engine.errors import AuditError
from calfrehab.engine.errors import TrailBusyError as TrailBusyError
from calfrehab.engine.safeio import shown

__all__ = ["TrailBusyError", "TrailRunLock", "lock_path"]


def lock_path(trail: Path) -> Path:
    return trail.with_name(trail.name + ".batch-lock")


class TrailRunLock:
    """``with TrailRunLock(trail):`` — held for the whole run."""

    def __init__(self, trail: Path) -> None:
        self.path = lock_path(trail)
        # timeout 0: a second batch is refused at once, never queued.
        self._lock = FileLock(self.path, timeout=0, mode=0o600)

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except Timeout:
            raise TrailBusyError(
                f"another batch{self._holder()} is recording into the audit trail "
                f"{shown(self.path.with_name(self.path.name.removesuffix('.batch-lock')))}; "
                "wait for it to finish (then --resume decides only what is left), "
                "or give this batch another --audit") from None
        except OSError as exc:
            raise AuditError(
                f"cannot lock the audit trail ({shown(self.path)}): {exc.strerror}") from None
        # Who holds it, for the message a second batch prints. A second
        # descriptor is safe here: flock belongs to the lock's own open
        # file, and closing another does not drop it.
        with contextlib.suppress(OSError):
            flags = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(self.path, flags)
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            finally:
                os.close(fd)

    def _holder(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            text = self.path.read_bytes()[:32].decode("ascii").strip()
            return f" (process {int(text)})" if text else ""
        return ""

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)

    def __enter__(self) -> TrailRunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
