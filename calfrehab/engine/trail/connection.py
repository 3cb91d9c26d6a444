"""Opening a trail's SQLite file: the one connection of an operation.

What is refused before SQLite sees the path (checked by ``stat``, never by
opening the file: closing any other descriptor of a file drops every POSIX
lock the process holds on it, a SQLite connection's included, "How To
Corrupt An SQLite Database File" §2.2): a directory, a FIFO (SQLite would
wait on it for ever), a device (SQLite would leave a journal beside it), a
socket. What SQLite itself checks: that the file is a database (its
header) and a calfrehab trail of a version this program reads.

A writable connection switches the trail to WAL with ``synchronous =
FULL`` and a busy timeout; a new, empty file gets the current schema under
``BEGIN IMMEDIATE``. A read-only one (``mode=ro``, or ``immutable=1`` when
a WAL trail's ``-shm`` cannot be made) never writes to the file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from calfrehab.engine.errors import OutputError
from calfrehab.engine.safeio import create_private
from calfrehab.engine.trail.errors import AuditError
from calfrehab.engine.trail.schema import (
    FORMAT,
    FORMAT_VERSION,
    GENESIS_HASH,
    READABLE_VERSIONS,
    SCHEMA_V4,
    split_sql,
)

__all__ = ["PAGE_SIZE", "errors", "open_connection", "regular_size", "rollback", "table_names"]

# The page size of a new trail (SQLite's default is 4,096). An entry is
# about 2.5 KB, mostly its compressed documents, and every entry adds a key
# to five B-trees of random keys (ids and hashes); with larger pages a
# commit writes fewer of them (one write per page into the WAL, and again
# at each checkpoint). Measured recording 10,000 prepared entries, 2,000 a
# transaction, 4 alternating rounds (thread CPU of the recording process):
# 39.6 us a case at 4 KB, 33.8 at 8 KB, 30.0 at 16 KB, and the file 13%
# smaller (2,543 against 2,916 bytes an entry). Only new trails: SQLite
# cannot change a WAL database's page size, and no reader depends on it.
PAGE_SIZE = 16384


@contextlib.contextmanager
def errors(path: Path, action: str) -> Iterator[None]:
    """Every sqlite3 error as an AuditError naming the trail and the action."""
    try:
        yield
    except sqlite3.Error as exc:
        raise AuditError(f"audit trail {path}: cannot {action}: {exc}") from exc


def rollback(conn: sqlite3.Connection) -> None:
    # Called while another exception propagates: never mask it.
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def regular_size(path: Path) -> int | None:
    """The size of the trail file, None if there is none; refuses anything
    but a regular file (a directory, a FIFO, a device, a socket) without
    opening it: SQLite would block on a FIFO, and beside a device it would
    leave a journal (``/dev/null-journal``)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditError(f"cannot read audit trail {path}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise AuditError(f"{path} is a directory, not a calfrehab audit trail")
    if not stat.S_ISREG(st.st_mode):
        raise AuditError(
            f"{path} is not a regular file ({_file_kind(st.st_mode)}), so not a calfrehab "
            "audit trail"
        )
    return st.st_size


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"


def table_names(conn: sqlite3.Connection, path: Path | None = None) -> set[str]:
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.DatabaseError as exc:
        # The file's header is checked here, through SQLite, and never by
        # opening the file ourselves (see the module's docstring): a
        # Python open() and close() of the trail let another process's
        # checkpoint reset the WAL under an append (issue 27 item 1).
        if path is not None and "not a database" in str(exc):
            raise AuditError(
                f"{path} is not a SQLite database, so not a calfrehab audit trail"
            ) from exc
        raise
    return {str(r[0]) for r in rows}


def open_connection(
    path: Path,
    *,
    timeout: float,
    readonly: bool,
    create: bool,
    created_at: Callable[[], str],
) -> tuple[sqlite3.Connection, int]:
    """The connection and the trail's format version. ``create``: a
    missing or empty file becomes a new trail (``created_at`` gives its
    ``meta.created_at``); otherwise it must already be one."""
    if readonly:
        return _open_readonly(path, timeout)
    if not create:
        size = regular_size(path)
        if size is None:
            raise AuditError(f"no audit trail at {path}: nothing has been recorded there")
        if size == 0:
            raise AuditError(f"{path} is an empty file, not a calfrehab audit trail")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"cannot create the directory for audit trail {path}: {exc}") from exc
    size = regular_size(path)
    try:
        # A new trail holds case documents: owner-only, as every output.
        created = create_private(path)
        if not created and size == 0:
            # An existing empty file becomes a new trail too: as private as
            # one we create (before SQLite gives -wal and -shm its mode).
            os.chmod(path, 0o600)
    except OutputError as exc:
        raise AuditError(f"cannot create audit trail {path}: {exc}") from exc
    except OSError as exc:
        raise AuditError(f"cannot make audit trail {path} private (owner-only): "
                         f"{exc.strerror or exc}") from exc
    with errors(path, "open it"):
        # isolation_level=None: the trail issues BEGIN/COMMIT itself, so
        # that appends can use BEGIN IMMEDIATE (Python's implicit
        # transactions are deferred, which lets two writers both read the
        # same chain head and fork the chain).
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        return conn, _prepare(conn, path, timeout, created_at)
    except BaseException:
        conn.close()
        raise


def _log_has_content(wal: Path) -> bool:
    """Whether the write-ahead log ``wal`` exists with content. One stat,
    not exists() then stat(): the last writer to close deletes the log, and
    between the two calls it could go (a reader racing a writer's close got
    FileNotFoundError)."""
    try:
        return wal.stat().st_size > 0
    except FileNotFoundError:
        return False


def _open_readonly(path: Path, timeout: float) -> tuple[sqlite3.Connection, int]:
    if regular_size(path) is None:
        raise AuditError(f"no audit trail at {path}: nothing has been recorded there")
    uri = f"file:{quote(str(path.resolve()))}"
    last: sqlite3.Error | None = None
    # mode=ro first: it still sees what concurrent writers commit. A WAL
    # trail whose -shm cannot be created (a read-only directory or mount)
    # cannot be opened that way; immutable=1 then reads the file as it
    # stands, which is right for a trail nobody can write.
    attempts = ["mode=ro"]
    # immutable=1 ignores a write-ahead log: only safe when there is none
    # with content, else it would show an older state of the trail.
    if not _log_has_content(Path(f"{path}-wal")):
        attempts.append("mode=ro&immutable=1")
    for params in attempts:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                f"{uri}?{params}", uri=True, timeout=timeout, isolation_level=None
            )
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            return conn, check_format(conn, path)
        except sqlite3.Error as exc:
            last = exc
            if conn is not None:
                conn.close()
        except BaseException:
            if conn is not None:
                conn.close()
            raise
    hint = (
        " (its write-ahead log cannot be read without write access to the directory: "
        "copy the trail with its -wal file somewhere writable)"
        if len(attempts) == 1
        else ""
    )
    raise AuditError(f"audit trail {path}: cannot open it for reading: {last}{hint}")


def _prepare(
    conn: sqlite3.Connection, path: Path, timeout: float, created_at: Callable[[], str]
) -> int:
    with errors(path, "open it"):
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        if not table_names(conn, path):
            # New (empty) file: it is ours to configure. The page size can
            # only be chosen before the first page is written (and never
            # again in WAL mode), so it comes first; WAL is set before the
            # schema so the very first transaction already uses it.
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            _set_wal(conn, path, timeout)
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-check under the write lock: another process may have
                # created the schema between our look and our lock.
                if not table_names(conn):
                    _create_schema(conn, created_at())
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        version = check_format(conn, path)
        # Only now, knowing the file is a calfrehab trail, change its
        # journal mode: never convert someone else's database.
        _set_wal(conn, path, timeout)
        # FULL: a committed decision survives a power cut, at the cost of
        # an fsync per commit (batches amortise it with record_many).
        conn.execute("PRAGMA synchronous = FULL")
        return version


# How long to sleep between tries of the switch to WAL: short at first (the
# lock it waits for is another opener's schema creation, milliseconds), never
# long enough to matter to a person.
_WAL_RETRY_FIRST_S = 0.002
_WAL_RETRY_MOST_S = 0.05


def _set_wal(conn: sqlite3.Connection, path: Path, timeout: float) -> None:
    """Put the trail in WAL mode, waiting up to ``timeout`` for a lock.

    SQLite runs no busy handler for a change of journal mode, so the busy
    timeout does not cover it: while another process creates a new trail's
    schema (``BEGIN IMMEDIATE`` on a file still in rollback-journal mode),
    the switch fails at once with "database is locked". It is tried again
    until the timeout, as a busy wait would; WAL is a property of the file,
    so once any opener has switched it there is nothing left to do."""
    deadline = time.monotonic() + timeout
    pause = _WAL_RETRY_FIRST_S
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) \
                    or time.monotonic() >= deadline:
                raise
        else:
            if mode is None or str(mode[0]).lower() != "wal":
                # Answered, not refused for a lock: this file cannot be WAL.
                raise AuditError(
                    f"audit trail {path}: cannot switch to WAL journal mode (got {mode!r})")
            return
        time.sleep(pause)
        pause = min(pause * 2, _WAL_RETRY_MOST_S)


def _create_schema(conn: sqlite3.Connection, created_at: str) -> None:
    # Statement by statement: executescript() would COMMIT our BEGIN
    # IMMEDIATE first and lose the lock that makes creation safe.
    for statement in split_sql(SCHEMA_V4):
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [
            ("format", FORMAT),
            ("format_version", FORMAT_VERSION),
            ("created_at", created_at),
            ("entry_count", 0),
            ("last_hash", GENESIS_HASH),
        ],
    )


def check_format(conn: sqlite3.Connection, path: Path) -> int:
    """The trail's format version; AuditError for a file that is not a
    calfrehab trail or is one of a version this program does not read."""
    not_ours = AuditError(f"{path} is not a calfrehab audit trail")
    if "meta" not in table_names(conn, path):
        raise not_ours
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error as exc:  # a foreign table that happens to be called meta
        raise not_ours from exc
    if meta.get("format") != FORMAT:
        raise not_ours
    version = meta.get("format_version")
    if isinstance(version, str) and version.isdigit():
        version = int(version)  # written as text by some other tool: same number
    if not isinstance(version, int) or isinstance(version, bool):
        raise AuditError(f"audit trail {path} has an unreadable format_version {version!r}")
    if version not in READABLE_VERSIONS:
        newer = "a newer" if version > FORMAT_VERSION else "an unsupported"
        raise AuditError(
            f"audit trail {path} has {newer} format version {version}; "
            f"this calfrehab reads format versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    return version
