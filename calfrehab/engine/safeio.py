"""The one way calfrehab reads an input file and writes an output file.

- :func:`read_input_bytes` reads a regular file (or ``-``, standard input)
  and nothing else. It opens with ``O_NONBLOCK`` and checks what it opened
  with ``fstat`` before reading, so a FIFO never hangs the program and
  ``/dev/zero`` is refused rather than read until memory runs out. Reading
  stops at a cap (:func:`calfrehab.engine.limits.max_input_bytes`, 10 MB
  unless ``CALFREHAB_MAX_INPUT_BYTES`` says otherwise).
- :func:`atomic_write_bytes` / :func:`atomic_write_text` / :class:`AtomicFile`
  write through a temporary file in the target's directory, fsync it, and
  move it over the target with :func:`os.replace`, so a reader (or a crash)
  never sees half a file. They replace only a regular file or nothing: never
  a device such as ``/dev/null`` (even as root), a FIFO, a directory or a
  symlink. Files are created ``0600`` by default: outputs hold patient data.
  Temporary names are recognisable (``.NAME.PID.RANDOM.calfrehab.tmp``) so
  :func:`sweep_stale_temps` can remove what a killed run left behind.
- :func:`check_replace` refuses an existing output unless forced, and a
  case file replaced by anything but the same patient's case, ever;
  :func:`refuse_unless_regular` refuses a symlink, a directory or a special
  file where a file will be read and then replaced (import's case files).
- :func:`check_outputs` refuses, before any work is done, an output that is
  one of the inputs, the audit trail (or its ``-wal``/``-shm``), another
  output, a device, a special file or a symlink. It raises
  :class:`~calfrehab.engine.errors.UnsafeOutputError`, which the CLI reports
  with exit status 2.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from calfrehab.engine.errors import InputError, OutputError, UnsafeOutputError
from calfrehab.engine.textsafe import for_terminal

StrPath = str | os.PathLike[str]

#: Suffix of every temporary file an atomic write creates.
TEMP_SUFFIX = ".calfrehab.tmp"
# A file name may be 255 bytes (NAME_MAX on Linux, macOS and Windows). A
# temporary name adds a dot, the pid (up to 10 digits), mkstemp's 8 random
# characters, three more dots and TEMP_SUFFIX to the target's name; a name
# of 227-255 bytes could be written by no command. Longer names are
# shortened in the temporary name, keeping a hash of the whole name.
NAME_MAX = 255
_TEMP_ROOM = NAME_MAX - (3 + 10 + 8 + len(TEMP_SUFFIX))


def short_name(name: str, room: int) -> str:
    """``name`` if it fits in ``room`` bytes (UTF-8), else a prefix of it
    and ``~`` and 8 hex digits of its sha256, ``room`` bytes at most: the
    same name always shortens the same way, so what was made with it can be
    found again."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= room:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:8]
    head = raw[: room - 9].decode("utf-8", "ignore")  # never half a character
    return f"{head}~{digest}"

# How long a path may be when shown in a message (paths can be hostile too:
# a file name in a batch directory may hold a newline or ESC).
_PATH_SHOWN = 160

_KIND_NAMES = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symlink"),
)


def shown(path: StrPath) -> str:
    """A path as it may appear in a message: escaped and clipped."""
    return for_terminal(os.fspath(path), limit=_PATH_SHOWN)


def _kind(mode: int) -> str:
    for test, name in _KIND_NAMES:
        if test(mode):
            return name
    return "not a regular file"


# ------------------------------------------------------------------ reading


def _open_regular(name: str) -> int:
    """A descriptor open for reading on ``name``, which must be a regular
    file: opened non-blocking (a FIFO with no writer returns at once) and
    checked with fstat before anything is read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        raise InputError(shown(name), f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise InputError(shown(name), f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InputError(shown(name), f"not a regular file ({_kind(st.st_mode)}); "
                                      "only regular files (or - for standard input) are read")
    return fd


def open_regular(path: StrPath) -> IO[bytes]:
    """A binary file object for streaming a large input (a JSON Lines batch
    file) line by line; like :func:`read_input_bytes` it refuses anything but
    a regular file, without blocking. The caller bounds each line itself."""
    fd = _open_regular(os.fspath(path))
    return os.fdopen(fd, "rb")


def read_input_bytes(path: StrPath, *, cap_bytes: int) -> bytes:
    """The bytes of ``path`` (``-``: standard input), at most ``cap_bytes``.

    Raises :class:`InputError` naming the file when it is not a regular file
    (a FIFO, a device, a directory, a socket), is larger than the cap, or
    cannot be read. Symlinks to regular files are followed: reading through
    one harms nothing.
    """
    name = os.fspath(path)
    if name == "-":
        return _read_capped(sys.stdin.buffer, "<stdin>", cap_bytes)
    fd = _open_regular(name)
    try:
        if os.fstat(fd).st_size > cap_bytes:
            raise _too_large(name, cap_bytes)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return _read_capped(fh, name, cap_bytes)
    except OSError as exc:
        raise InputError(shown(name), f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _read_capped(fh: IO[bytes], name: str, cap_bytes: int) -> bytes:
    # Read one byte past the cap: a file that grew after fstat (or a pipe)
    # is caught without reading more than the cap allows.
    chunks: list[bytes] = []
    got = 0
    while got <= cap_bytes:
        # In pieces: a cap set very large must not allocate it up front.
        chunk = fh.read(min(cap_bytes + 1 - got, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got > cap_bytes:
        raise _too_large(name, cap_bytes)
    return b"".join(chunks)


def _too_large(name: str, cap_bytes: int) -> InputError:
    return InputError(
        shown(name),
        f"larger than the input size cap of {cap_bytes} bytes "
        "(set CALFREHAB_MAX_INPUT_BYTES to read larger files)",
    )


# ------------------------------------------------------------------ writing


def refuse_unless_regular(target: Path) -> None:
    """Raise UnsafeOutputError unless ``target`` is a regular file or absent
    (checked with lstat: a symlink is refused, not followed)."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"cannot write {shown(target)}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeOutputError(
            f"refusing to write {shown(target)}: it is {_kind(st.st_mode)}; "
            "an output may only replace a regular file"
        )


def case_id_of(path: StrPath) -> str | None:
    """The ``case_id`` of the case file at ``path``, or None when it is not
    one (absent, unreadable, not a JSON object with a schema_version and a
    case_id). Reads at most 10 MB: a case file is far smaller."""
    import json

    try:
        with open(path, "rb") as fh:
            data = fh.read(10 * 1024 * 1024)
        document = json.loads(data.decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(document, dict) and "schema_version" in document:
        case_id = document.get("case_id")
        return case_id if isinstance(case_id, str) else None
    return None


def _is_sqlite(path: StrPath) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def check_replace(path: StrPath | None, *, force: bool, case_id: str | None = None) -> None:
    """Refuse to replace an existing output unless ``force``; and never
    replace a case file with anything but the same patient's case
    (``case_id``: the case being written; None: the output is not a case
    file, so a case file there is never replaced, even with ``force``).
    Raises :class:`UnsafeOutputError` (exit 2 at the CLI)."""
    if path is None or os.fspath(path) == "-" or not os.path.lexists(path):
        return
    refuse_unless_regular(Path(path))
    if _is_sqlite(path):
        raise UnsafeOutputError(
            f"refusing to write {shown(path)}: it is the audit trail or another SQLite "
            "database, which an output never replaces (not even with --force); choose "
            "another output file")
    there = case_id_of(path) if os.path.isfile(path) else None
    if there is not None and there != case_id:
        what = (f"case {for_terminal(case_id)}" if case_id is not None else "this output")
        raise UnsafeOutputError(
            f"refusing to write {shown(path)}: it is the case file of case "
            f"{for_terminal(there)}, and a case file is never replaced by {what} "
            "(not even with --force); choose another output file")
    if not force:
        raise UnsafeOutputError(f"refusing to write {shown(path)}: it exists; give --force "
                                "to replace it, or choose another output file")


class AtomicFile:
    """A file written under a temporary name beside ``target`` and moved
    over it only by :meth:`commit`; :meth:`abort` (or leaving the ``with``
    block by an exception) removes the temporary file and leaves the target
    as it was.

    Write through :attr:`fh` (text when ``text`` is true, else bytes).
    """

    fh: IO[Any]

    def __init__(
        self,
        target: StrPath,
        *,
        mode: int = 0o600,
        text: bool = True,
        newline: str | None = None,
    ) -> None:
        self.target = Path(target)
        refuse_unless_regular(self.target)
        # What a killed run left behind for this target goes now.
        sweep_stale_temps(self.target)
        directory = self.target.parent
        # Imported here: a command that writes nothing (`next --no-record`)
        # does not pay for tempfile and its shutil, bz2 and lzma (issue 28
        # item 4, cold start: about 2 ms of CPU).
        import tempfile

        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{short_name(self.target.name, _TEMP_ROOM)}.{os.getpid()}.",
                suffix=TEMP_SUFFIX, dir=directory)
        except OSError as exc:
            raise OutputError(f"cannot write {shown(self.target)}: "
                              f"{exc.strerror or exc}") from None
        self.tmp = Path(tmp)
        try:
            os.fchmod(fd, mode)
            if text:
                self.fh = open(fd, "w", encoding="utf-8", newline=newline)  # noqa: SIM115
            else:
                self.fh = open(fd, "wb")  # noqa: SIM115
        except BaseException:
            os.close(fd)
            self._unlink_tmp()
            raise
        self._done = False

    def commit(self) -> None:
        """Flush, fsync and move the file into place (then fsync the
        directory so the rename itself survives a crash)."""
        if self._done:
            return
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            # Checked again just before the rename: the target may have been
            # swapped for a symlink or a device while the file was written.
            refuse_unless_regular(self.target)
            os.replace(self.tmp, self.target)
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot write {shown(self.target)}: "
                              f"{exc.strerror or exc}") from None
        except BaseException:
            self.abort()
            raise
        self._done = True
        _fsync_dir(self.target.parent)

    def abort(self) -> None:
        self._done = True
        with contextlib.suppress(OSError, ValueError):
            self.fh.close()
        self._unlink_tmp()

    def _unlink_tmp(self) -> None:
        with contextlib.suppress(OSError):
            self.tmp.unlink()

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def atomic_write_bytes(path: StrPath, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically (see :class:`AtomicFile`)."""
    with AtomicFile(path, mode=mode, text=False) as out:
        try:
            out.fh.write(data)
        except OSError as exc:
            raise OutputError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None


def atomic_write_text(
    path: StrPath, data: str, *, mode: int = 0o600, newline: str | None = None
) -> None:
    """Write ``data`` (UTF-8) to ``path`` atomically (see :class:`AtomicFile`)."""
    with AtomicFile(path, mode=mode, text=True, newline=newline) as out:
        try:
            out.fh.write(data)
        except OSError as exc:
            raise OutputError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None


def create_private(path: StrPath) -> bool:
    """Create ``path`` empty, readable and writable by its owner only, if it
    does not exist yet; True if this call created it. For files that another
    library then opens and fills in place (SQLite, which gives its -wal and
    -shm files the database file's permissions): they hold patient data like
    every other file calfrehab writes."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise OutputError(f"cannot create {shown(path)}: {exc.strerror or exc}") from None
    os.close(fd)
    return True


def _fsync_dir(directory: Path) -> None:
    # Makes the rename durable on POSIX; not possible everywhere, so best effort.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory if str(directory) else ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temp_files_for(target: StrPath) -> Iterator[tuple[Path, int | None]]:
    """The temporary files an atomic write of ``target`` may have left,
    with the id of the process that made each (None if unreadable)."""
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    stem = short_name(target.name, _TEMP_ROOM)
    for path in directory.glob(f".{_glob_escape(stem)}.*{TEMP_SUFFIX}"):
        middle = path.name[len(stem) + 2 : -len(TEMP_SUFFIX)]
        pid_text = middle.split(".", 1)[0]
        yield path, int(pid_text) if pid_text.isdigit() else None


def sweep_stale_temps(target: StrPath) -> list[Path]:
    """Remove temporary files of ``target`` left by a process that is no
    longer running (a killed run); returns what was removed. A temp file of a
    live process (a concurrent run) is left alone."""
    removed: list[Path] = []
    for path, pid in temp_files_for(target):
        if pid is not None and _alive(pid):
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                path.unlink()
                removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process: assume alive, leave its file
    return True


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


# ------------------------------------------------------------------ checking


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def check_outputs(
    outputs: Iterable[StrPath | None],
    *,
    inputs: Iterable[StrPath] = (),
    trail: StrPath | None = None,
) -> None:
    """Refuse outputs that would destroy data, before any work is done.

    An output (``None`` and ``-``, standard output, are skipped) may not be:
    a symlink, a device, a FIFO, a socket or a directory; one of ``inputs``
    (by path or by inode, so a hard link or ``./x`` is caught); the audit
    ``trail`` or its ``-wal`` / ``-shm`` files; or the same file as another
    output. Raises :class:`UnsafeOutputError` (exit 2 at the CLI).
    """
    protected: list[tuple[Path, str]] = [(Path(p), "an input") for p in inputs]
    if trail is not None:
        t = Path(trail)
        protected += [
            (t, "the audit trail"),
            (t.with_name(t.name + "-wal"), "the audit trail's write-ahead log"),
            (t.with_name(t.name + "-shm"), "the audit trail's shared-memory file"),
            (t.with_name(t.name + "-journal"), "the audit trail's journal"),
        ]
    seen: list[Path] = []
    for out in outputs:
        if out is None or os.fspath(out) == "-":
            continue
        target = Path(out)
        refuse_unless_regular(target)
        roles = [*protected, *((p, "another output") for p in seen)]
        ident = _identity(target)
        where = _resolved(target)
        for other, role in roles:
            same = _resolved(other) == where
            if not same and ident is not None:
                same = _identity(other) == ident
            if same:
                raise UnsafeOutputError(
                    f"refusing to write {shown(target)}: it is {role} "
                    f"({shown(other)}); choose another output file"
                )
        seen.append(target)

