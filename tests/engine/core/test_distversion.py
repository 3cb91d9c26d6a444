"""An installed distribution's version, read as importlib.metadata reads it
but without importing it (``engine/distversion.py``, issue 28 item 4)."""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import os
import sys
from pathlib import Path

import pytest
from helpers import python_output

from calfrehab.engine import distversion


def _lookup(dist: str) -> str | None:
    """The quick reader's own answer. It stands aside (``_Unusual``) while
    another distribution finder is on ``sys.meta_path``: importlib_metadata's,
    which importing dask installs (earlier tests in the same process do),
    and which also takes the interpreter's own finder's place. These tests
    judge the reader itself, so it reads with that finder set aside; the
    standard library answers as the process is."""
    saved = sys.meta_path[:]
    sys.meta_path[:] = [finder for finder in saved
                        if not hasattr(finder, "find_distributions")
                        or finder is importlib.machinery.PathFinder]
    try:
        return distversion._lookup(dist)
    finally:
        sys.meta_path[:] = saved


@pytest.mark.parametrize("dist", ["calfrehab", "durable-rules", "durable_rules", "pydantic",
                                  "click", "PyYAML", "pyyaml", "typing-extensions"])
def test_the_reader_gives_the_standard_librarys_answer(dist: str) -> None:
    assert _lookup(dist) == importlib.metadata.version(dist)


def test_every_installed_distribution_reads_as_the_standard_library_reads_it() -> None:
    names = {dist.metadata["Name"] for dist in importlib.metadata.distributions()}
    assert len(names) > 10
    assert {n: _lookup(n) for n in names} == {
        n: importlib.metadata.version(n) for n in names}


def test_a_distribution_not_installed_is_none() -> None:
    assert _lookup("calfrehab-no-such-distribution") is None
    assert distversion.version("calfrehab-no-such-distribution") is None


def _dist_info(root: Path, name: str, metadata: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "METADATA").write_text(metadata, encoding="utf-8")


def test_the_first_entry_on_the_path_wins_with_names_normalised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _dist_info(first, "Calf.Probe_Dist-9.1+local.2.dist-info",
               "Metadata-Version: 2.1\nName: calf-probe-dist\nVersion: 9.1+local.2\n\nBody\n")
    _dist_info(second, "calf_probe_dist-1.0.dist-info",
               "Metadata-Version: 2.1\nName: calf-probe-dist\nVersion: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(first), str(second), *sys.path])
    assert _lookup("calf-probe-dist") == "9.1+local.2"
    assert importlib.metadata.version("calf-probe-dist") == "9.1+local.2"
    assert _lookup("CALF__probe.dist") == "9.1+local.2"


@pytest.mark.parametrize("metadata", [
    "Name: odd\nVersion:\n 2.0\n",     # a folded header: email's parser decides
    "Name: odd\n\nVersion: 2.0\n",     # Version in the body, not a header
])
def test_headers_it_does_not_read_as_email_would_are_left_to_the_standard_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metadata: str,
) -> None:
    _dist_info(tmp_path, "odd_probe-2.0.dist-info", metadata)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    with pytest.raises(distversion._Unusual):
        _lookup("odd-probe")


@pytest.mark.parametrize("metadata", [
    "Name: odd\nthis line is no header\nVersion: 2.0\n",  # email: the body starts there
    "Name: odd\nVersion : 1.0\nVersion: 2.0\n",          # so it does at a space before ':'
    "\ufeffName: odd\nVersion: 2.0\n",                    # and at a byte-order mark
    "Summary: a\x0cVersion: 3.0\nVersion: 2.0\n",         # \x0c, \u2028 end no line for email
    "Summary: a\u2028Version: 3.0\nVersion: 2.0\n",
    "Summary: a\x85Version: 3.0\nVersion: 2.0\n",
    "Name: odd\n   \nVersion: 2.0\n",                      # spaces only: a folded line
    "Name: odd\rVersion: 2.0\r\n",
])
# Python 3.12's importlib.metadata warns that a distribution with no Version
# header will one day raise, rather than give None: these files have none.
@pytest.mark.filterwarnings("ignore:Implicit None on return values:DeprecationWarning")
def test_the_answer_is_email_s_reading_of_the_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metadata: str,
) -> None:
    # The reader's answer, or the standard library's where it stands aside,
    # is what importlib.metadata's email parser reads, line breaks and where
    # the headers end included.
    info = tmp_path / "odd_probe-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_bytes(metadata.encode("utf-8"))
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    # A file with no Version header gives None, or a KeyError where
    # importlib_metadata's finder has taken the interpreter's place (dask
    # installs it, see _lookup): the outcome, value or error, is compared.
    def standard() -> tuple[str, str | None]:
        try:
            return "ok", importlib.metadata.version("odd-probe")
        except KeyError:
            return "error", None

    try:
        quick = "ok", _lookup("odd-probe")
    except distversion._Unusual:
        quick = standard()
    assert quick == standard()


def test_a_zip_on_the_path_is_left_to_the_standard_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive = tmp_path / "packages.zip"
    archive.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
    monkeypatch.setattr(sys, "path", [str(archive), *sys.path])
    with pytest.raises(distversion._Unusual):
        _lookup("calfrehab")


def test_an_odd_path_entry_is_left_to_the_standard_library() -> None:
    # Not a string (sys.path should hold only strings; the standard library
    # copes, and so must this, by leaving it to the standard library).
    code = ("import pathlib, sys\nsys.path.insert(0, pathlib.Path('/no-such-calfrehab-dir'))\n"
            "from calfrehab.engine import distversion\n"
            "print(distversion.version('durable-rules'))")
    out = python_output(code)
    assert out.strip() == importlib.metadata.version("durable-rules")


def test_a_fresh_process_answers_without_importing_importlib_metadata() -> None:
    code = ("import json, sys\nfrom calfrehab.engine import distversion\n"
            "v = distversion.version('durable-rules')\n"
            "print(json.dumps([v, 'importlib.metadata' in sys.modules]))")
    out = python_output(code)
    assert out.strip() == f'["{importlib.metadata.version("durable-rules")}", false]'


def test_another_distribution_finder_sends_the_question_to_the_standard_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class _Finder:
        """Stands for importlib_metadata's MetadataPathFinder: it could
        find distributions the quick reader does not see."""

        @staticmethod
        def find_spec(*_: object) -> None:
            return None

        @staticmethod
        def find_distributions(*_: object) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, _Finder])
    with pytest.raises(distversion._Unusual):
        distversion._lookup("click")
    assert distversion.version("click") == importlib.metadata.version("click")


def test_a_directory_is_listed_again_only_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A cold `next` asks three times (two versions in the decision, one for
    # the driver): each path entry is listed once, and again only once its
    # modification time changes (a distribution installed meanwhile).
    _dist_info(tmp_path, "calf_probe_a-1.0.dist-info", "Name: calf-probe-a\nVersion: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    listed: list[str] = []
    real = os.listdir

    def listdir(path: str) -> list[str]:
        listed.append(path)
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    assert _lookup("calf-probe-a") == "1.0"
    assert _lookup("calf-probe-a") == "1.0"
    assert _lookup("calf-probe-b") is None
    assert listed.count(str(tmp_path)) == 1
    _dist_info(tmp_path, "calf_probe_b-2.0.dist-info", "Name: calf-probe-b\nVersion: 2.0\n")
    # (set apart from the first listing's time whatever the clock's grain)
    stat = tmp_path.stat()
    os.utime(tmp_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert _lookup("calf-probe-b") == "2.0"
    assert listed.count(str(tmp_path)) == 2
    assert importlib.metadata.version("calf-probe-b") == "2.0"


def test_the_working_directory_is_the_one_of_the_moment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # sys.path's "" is the working directory: a listing is kept by absolute
    # path, so another working directory is listed for itself.
    for name, ver in (("a", "1.0"), ("b", "2.0")):
        _dist_info(tmp_path / name, f"calf_probe_cwd-{ver}.dist-info",
                   f"Name: calf-probe-cwd\nVersion: {ver}\n")
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    monkeypatch.chdir(tmp_path / "a")
    assert _lookup("calf-probe-cwd") == "1.0"
    monkeypatch.chdir(tmp_path / "b")
    assert _lookup("calf-probe-cwd") == "2.0"
