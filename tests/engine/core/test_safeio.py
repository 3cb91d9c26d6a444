"""The one reader and the one atomic writer (calfrehab.engine.safeio)."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calfrehab.engine import limits
from calfrehab.engine.errors import CalfrehabError, InputError, OutputError, UnsafeOutputError
from calfrehab.engine.safeio import (
    TEMP_SUFFIX,
    AtomicFile,
    atomic_write_bytes,
    atomic_write_text,
    check_outputs,
    read_input_bytes,
    sweep_stale_temps,
    temp_files_for,
)

# ------------------------------------------------------------------ reading


def test_reads_a_regular_file(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_bytes(b"{}")
    assert read_input_bytes(p, cap_bytes=10) == b"{}"


def test_a_file_of_exactly_the_cap_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "a"
    p.write_bytes(b"x" * 10)
    assert read_input_bytes(p, cap_bytes=10) == b"x" * 10
    p.write_bytes(b"x" * 11)
    with pytest.raises(InputError, match="size cap of 10 bytes"):
        read_input_bytes(p, cap_bytes=10)


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "case.json"
    os.mkfifo(fifo)
    # No writer ever opens the FIFO: a blocking open would hang here.
    with pytest.raises(InputError, match="FIFO"):
        read_input_bytes(fifo, cap_bytes=100)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_is_refused_without_reading_it(device: str) -> None:
    with pytest.raises(InputError, match="character device"):
        read_input_bytes(device, cap_bytes=100)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directory"):
        read_input_bytes(tmp_path, cap_bytes=100)


def test_a_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.json: cannot read"):
        read_input_bytes(tmp_path / "nope.json", cap_bytes=100)


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"ok")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert read_input_bytes(tmp_path / "link", cap_bytes=10) == b"ok"


def test_stdin_stops_at_the_cap() -> None:
    # /dev/zero on stdin: reading must stop just past the cap, not run out of memory.
    code = (
        "import sys\n"
        "from calfrehab.engine.safeio import read_input_bytes\n"
        "from calfrehab.engine.errors import InputError\n"
        "try:\n"
        "    read_input_bytes('-', cap_bytes=1000)\n"
        "except InputError as e:\n"
        "    print(e)\n"
    )
    with open("/dev/zero", "rb") as zero:
        out = subprocess.run([sys.executable, "-c", code], stdin=zero, capture_output=True,
                             text=True, timeout=60, check=True)
    assert "<stdin>: larger than the input size cap of 1000 bytes" in out.stdout


def test_the_cap_is_a_setting_with_an_environment_override(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALFREHAB_MAX_INPUT_BYTES", raising=False)
    assert limits.max_input_bytes() == 10 * 1024 * 1024  # docs/limits.md: 10 MB
    monkeypatch.setenv("CALFREHAB_MAX_INPUT_BYTES", "2048")
    assert limits.max_input_bytes() == 2048
    monkeypatch.setenv("CALFREHAB_MAX_INPUT_BYTES", "lots")
    with pytest.raises(CalfrehabError, match="CALFREHAB_MAX_INPUT_BYTES"):
        limits.max_input_bytes()


# ------------------------------------------------------------------ writing


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_atomic_write_creates_an_owner_only_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    atomic_write_text(target, "a,b\n")
    assert target.read_text() == "a,b\n"
    assert _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_atomic_write_replaces_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new", mode=0o640)
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o640


def test_atomic_write_never_replaces_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("keep")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with pytest.raises(UnsafeOutputError, match="symlink"):
        atomic_write_text(link, "x")
    assert link.is_symlink() and real.read_text() == "keep"
    assert not list(tmp_path.glob(f"*{TEMP_SUFFIX}"))


def test_atomic_write_never_replaces_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeOutputError, match="FIFO"):
        atomic_write_text(fifo, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_atomic_write_never_replaces_a_device() -> None:
    # As root, os.replace over /dev/null would succeed: the check must come first.
    with pytest.raises(UnsafeOutputError, match="character device"):
        atomic_write_text("/dev/null", "x")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_an_aborted_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("previous")
    with pytest.raises(RuntimeError), AtomicFile(target) as out:
        out.fh.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_an_unwritable_directory_is_a_clean_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"missing/out\.txt"):
        atomic_write_text(tmp_path / "missing" / "out.txt", "x")


def test_stale_temps_of_dead_processes_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".out.csv.{dead_pid}.abc{TEMP_SUFFIX}"
    live = tmp_path / f".out.csv.{os.getpid()}.def{TEMP_SUFFIX}"
    other = tmp_path / f".other.csv.{dead_pid}.abc{TEMP_SUFFIX}"
    for p in (stale, live, other):
        p.write_text("partial")
    assert {p for p, _ in temp_files_for(target)} == {stale, live}
    assert sweep_stale_temps(target) == [stale]
    assert not stale.exists() and live.exists() and other.exists()


# ------------------------------------------------------------------ checking


def test_an_output_that_is_an_input_is_refused_by_path_and_by_inode(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n")
    with pytest.raises(UnsafeOutputError, match="it is an input"):
        check_outputs([src], inputs=[src])
    with pytest.raises(UnsafeOutputError, match="it is an input"):
        check_outputs([tmp_path / "." / "in.jsonl"], inputs=[src])
    hard = tmp_path / "hard.jsonl"
    os.link(src, hard)
    with pytest.raises(UnsafeOutputError, match="it is an input"):
        check_outputs([hard], inputs=[src])


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_the_trail_and_its_companions_are_never_outputs(tmp_path: Path, suffix: str) -> None:
    trail = tmp_path / "clinic.sqlite3"
    with pytest.raises(UnsafeOutputError, match="audit trail"):
        check_outputs([tmp_path / f"clinic.sqlite3{suffix}"], trail=trail)


def test_two_outputs_may_not_be_one_file(tmp_path: Path) -> None:
    with pytest.raises(UnsafeOutputError, match="another output"):
        check_outputs([tmp_path / "a.csv", tmp_path / "a.csv"])


def test_special_files_and_symlinks_are_refused_as_outputs(tmp_path: Path) -> None:
    link = tmp_path / "l"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UnsafeOutputError, match="symlink"):
        check_outputs([link])
    with pytest.raises(UnsafeOutputError, match="character device"):
        check_outputs(["/dev/null"])
    with pytest.raises(UnsafeOutputError) as exc:
        check_outputs([tmp_path])
    assert exc.value.exit_code == 2


def test_ordinary_outputs_and_stdout_pass(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n")
    check_outputs([tmp_path / "out.csv", None, "-", tmp_path / "errors.jsonl"],
                  inputs=[src], trail=tmp_path / "audit.sqlite3")


@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=3000))
def test_reading_returns_the_file_or_refuses_at_the_cap(data: bytes, cap: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f"
        p.write_bytes(data)
        if len(data) <= cap:
            assert read_input_bytes(p, cap_bytes=cap) == data
        else:
            with pytest.raises(InputError):
                read_input_bytes(p, cap_bytes=cap)


def test_a_new_write_sweeps_what_a_killed_run_left(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".out.csv.{int(dead.stdout)}.xyz{TEMP_SUFFIX}"
    stale.write_text("half")
    atomic_write_text(target, "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


@pytest.mark.parametrize("length", [226, 227, 240, 255])
def test_names_up_to_the_limit_can_be_written(tmp_path: Path, length: int) -> None:
    # The temporary name used to add ~32 bytes: names of 227-255 bytes
    # failed with "File name too long".
    from calfrehab.engine.casefile.editor import lock_path
    from calfrehab.engine.safeio import atomic_write_text, sweep_stale_temps, temp_files_for

    target = tmp_path / ("é" * (length // 2) + "x" * (length % 2))
    assert len(target.name.encode()) == length
    atomic_write_text(target, "data")
    assert target.read_text(encoding="utf-8") == "data"
    assert len(lock_path(target).name.encode()) <= 255
    # A temporary file a killed run left is still found and swept.
    with atomic_open_leftover(target) as leftover:
        assert [p for p, _ in temp_files_for(target)] == [leftover]
        assert sweep_stale_temps(target) == [leftover]


@contextlib.contextmanager
def atomic_open_leftover(target: Path) -> Iterator[Path]:
    """A temporary file of ``target`` as a dead process would leave it."""
    from calfrehab.engine.safeio import _TEMP_ROOM, TEMP_SUFFIX, short_name

    dead_pid = 2**22 + 1  # above Linux's pid_max: no such process
    path = target.with_name(f".{short_name(target.name, _TEMP_ROOM)}.{dead_pid}.abcdefgh"
                            f"{TEMP_SUFFIX}")
    path.write_text("half", encoding="utf-8")
    yield path
