#!/usr/bin/env python
"""Fill the tutorial and the rule-language worked example with real output.

    python scripts/capture_docs.py           # rewrite docs/tutorial.md and the worked example
    python scripts/capture_docs.py --check   # exit 1 and name every stale page

``docs/tutorial.md`` and the block of ``docs/rule-language.md`` between
``<!-- worked-example:start -->`` and ``<!-- worked-example:end -->`` show
commands with what they printed. Both are made from templates in
``docs/templates/`` by running every command, so the output on the page is
what the program prints today. Edit the templates, never the pages.

How a run goes. Each page is filled in a temporary directory laid out like
the repository: ``<tmp>/<repo name>/examples`` is a copy of ``examples/``,
and ``<tmp>/shared/examples`` a copy of the shared examples beside the
repository if there are any, so commands read ``examples/...`` (and could
read ``../shared/examples/...``) as a reader's would. Commands run through
``/bin/sh`` in ``<tmp>/<repo name>`` with the ``calfrehab`` installed next
to this Python (its ``bin`` directory first on ``PATH``, so ``python`` is
that one too), ``COLUMNS=80``, the C locale, and no ``CALFREHAB_*``
variable (so neither a clinic's audit trail nor its rules are used). The
audit trail the tutorial records to is ``clinic-audit.sqlite3`` in the
temporary directory. The templates use only ``examples/``: the pages can be
regenerated and checked in a checkout without ``../shared``.

Template placeholders (each may span lines):

``{{run: CMD}}``
    ``$ CMD`` and then everything CMD printed (stdout and stderr).
``{{run[SPEC]: CMD}}``
    only the lines SPEC selects, ``...`` for each gap (see below).
``{{out: CMD}}``, ``{{out[SPEC]: CMD}}``
    the output without the ``$ CMD`` line.
``{{quiet: CMD}}``
    run CMD, show nothing.
``{{edit: FILE}}``
    apply the plain text replacements in ``docs/templates/FILE`` (format
    below) to files in the run directory; shows nothing.
``{{csvtable: FILE}}``
    a Markdown table of the decisions in a ``calfrehab batch`` CSV file.

Every command must exit 0 unless the placeholder says otherwise with
``rc=N`` after the kind (``{{run rc=1: calfrehab validate bad.json}}``); a
command that exits otherwise stops the run with its output, so a broken
example never reaches a page.

Shell variables carry ids from one command to the next as a reader's shell
would: a command ``NAME=$(CMD)`` runs CMD, keeps what it printed (without
the final newline) as ``NAME`` for every later command of the page, and
shows ``$ NAME=$(CMD)`` with no output. In CMD, ``$ID`` is the first 8 characters of
the first decision id in the tutorial's audit trail, and ``CMD #show: TEXT``
runs CMD but shows TEXT as the command. ``2>/dev/null`` is run but not
shown.

SPEC is a comma-separated list of line ranges, 1-based: ``5``, ``1-19``,
``41-``, or ``A..B`` where A and B are each a line number, ``$`` (the last
line) or ``/REGEX/`` (the first line, at or after the end of the previous
range, that the regular expression matches; for B, at or after A), with an
optional ``+N`` or ``-N``. A range that matches nothing stops the run:
better than a silently wrong excerpt. SPEC cannot contain ``]`` or ``,``.

An edit file is a list of blocks, ``#`` lines between them are comments::

    @@ my-rules/rulebase.yaml
    <<<<<<<
    version: "2026.11.2"
    =======
    version: "2026.12.0"
    >>>>>>>

The text between ``<<<<<<<`` and ``=======`` must occur exactly once in
the file (or the run stops: the rules changed and the example needs a
look); it is replaced by the text up to ``>>>>>>>``.

``--check`` fills both pages in memory and compares them with the files,
ignoring only what differs from run to run: decision and entry ids (32 hex
digits, and their 8-character prefixes), times (``2026-11-24T16:42:08Z``,
``2026-11-24 16:42``), the audit chain's last hash, how long a batch took,
and temporary directory paths. The rule base's version and sha256 are
compared: a change to the rules makes the pages stale on purpose. Without
``--check``, a page whose text differs only in those is left untouched.

Exit status: 0 up to date (or written), 1 a page is stale, 2 the capture
itself failed (a command exited unexpectedly, an edit did not apply).
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TEMPLATES = DOCS / "templates"
SHARED_EXAMPLES = ROOT.parent / "shared" / "examples"

TUTORIAL_PAGE = DOCS / "tutorial.md"
TUTORIAL_TEMPLATE = "tutorial.tmpl.md"
RULE_LANGUAGE_PAGE = DOCS / "rule-language.md"
WORKED_TEMPLATE = "worked-example.tmpl.md"
WORKED_START = "<!-- worked-example:start -->"
WORKED_END = "<!-- worked-example:end -->"

AUDIT_FILE = "clinic-audit.sqlite3"
TMP_PREFIX = "calfrehab-docs-"


def _notice(template: str) -> str:
    return (f"<!-- Generated by scripts/capture_docs.py from docs/templates/{template}, "
            "with real command output. Edit the template, then run "
            "`python scripts/capture_docs.py`. -->")


class CaptureError(Exception):
    """The capture could not be made (not: the page is stale)."""


# ---------------------------------------------------------------- running


def calfrehab_bin_dir() -> Path:
    """The directory of the ``calfrehab`` installed next to this Python."""
    bin_dir = Path(sys.executable).parent
    if shutil.which("calfrehab", path=str(bin_dir)) is None:
        raise CaptureError(
            f"no `calfrehab` next to {sys.executable} (in {bin_dir}): run this script with "
            "the Python of the environment calfrehab is installed in "
            "(for example .venv/bin/python scripts/capture_docs.py)")
    return bin_dir


def _environment(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CALFREHAB_") and k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
    env.update(
        PATH=str(bin_dir) + os.pathsep + env.get("PATH", os.defpath),
        COLUMNS="80",
        LC_ALL="C",            # `ls` order, and nothing else locale-dependent
        PYTHONUTF8="1",        # ... while calfrehab still prints ✓, ×, →
        PYTHONUNBUFFERED="1",  # stdout and stderr interleaved as on a terminal
        PYTHONDONTWRITEBYTECODE="1",  # no __pycache__ in the repository's rules/
        TZ="UTC",
    )
    # Neither the developer's own calfrehab.toml (its time zone, its trail)
    # nor anything else in their configuration directory reaches a page.
    env.pop("XDG_CONFIG_HOME", None)
    return env


_ASSIGNMENT = re.compile(r"([A-Z][A-Z0-9_]*)=\$\((.*)\)", re.S)

_PLACEHOLDER = re.compile(
    r"\{\{(run|out|quiet|edit|csvtable)(?:\[([^\]]*)\])?(?: rc=(\d+))?:(.*?)\}\}(\n?)", re.S)


class Capture:
    """One page's run: a temporary directory laid out like the repository."""

    def __init__(self, page: str, tmp: Path, bin_dir: Path) -> None:
        self.page = page
        self.cwd = tmp / ROOT.name
        self.cwd.mkdir()
        shutil.copytree(ROOT / "examples", self.cwd / "examples")
        self.has_shared = SHARED_EXAMPLES.is_dir()
        if self.has_shared:
            shutil.copytree(SHARED_EXAMPLES, tmp / "shared" / "examples")
        self.env = _environment(bin_dir)
        self.env["XDG_CONFIG_HOME"] = str(tmp / "config")
        self.decision_prefix: str | None = None

    def sh(self, cmd: str) -> tuple[str, int]:
        if "../shared/" in cmd and not self.has_shared:
            raise CaptureError(
                f"{self.page}: `{cmd}` needs ../shared/examples, which is not beside the "
                f"repository ({SHARED_EXAMPLES}); the templates should use examples/ only")
        assigned = _ASSIGNMENT.fullmatch(cmd.strip())
        if assigned is not None:
            # NAME=$(CMD): keep CMD's output for the commands that follow.
            out, rc = self.sh(assigned.group(2))
            if rc == 0:
                self.env[assigned.group(1)] = out
            return "", rc
        result = subprocess.run(cmd, shell=True, cwd=self.cwd, env=self.env, text=True,
                                encoding="utf-8", stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=120, check=False)
        return result.stdout.rstrip("\n"), result.returncode

    def _first_decision_prefix(self) -> str:
        if self.decision_prefix is None:
            out, rc = self.sh(f"calfrehab audit list --audit {AUDIT_FILE} --json")
            if rc != 0:
                raise CaptureError(f"{self.page}: $ID: `calfrehab audit list` failed:\n{out}")
            data = json.loads(out)
            entries = data if isinstance(data, list) else data.get("entries", [])
            ids = [e["decision_id"] for e in entries if e.get("kind", "decision") == "decision"]
            if not ids:
                raise CaptureError(f"{self.page}: $ID used before any decision was recorded")
            self.decision_prefix = ids[0][:8]
        return self.decision_prefix

    def fill(self, template: str) -> str:
        return _PLACEHOLDER.sub(self._replace, template)

    def _replace(self, m: re.Match[str]) -> str:
        text = self._expand(m)
        # A placeholder alone on its line that shows nothing leaves no empty line.
        if not text and (m.start() == 0 or m.string[m.start() - 1] == "\n"):
            return ""
        return text + m.group(5)

    def _expand(self, m: re.Match[str]) -> str:
        kind, spec, rc_text, body = m.group(1), m.group(2), m.group(3), m.group(4).strip()
        if kind == "edit":
            apply_edits(TEMPLATES / body, self.cwd)
            return ""
        if kind == "csvtable":
            return csv_table(self.cwd / body)
        cmd, shown = body, body
        if " #show: " in body:
            cmd, shown = (part.strip() for part in body.split(" #show: ", 1))
        if "$ID" in cmd or "$ID" in shown:
            prefix = self._first_decision_prefix()
            cmd, shown = cmd.replace("$ID", prefix), shown.replace("$ID", prefix)
        out, rc = self.sh(cmd)
        expected = int(rc_text or 0)
        if rc != expected:
            raise CaptureError(
                f"{self.page}: `{cmd}` exited {rc}, expected {expected}; it printed:\n{out}")
        if kind == "quiet":
            return ""
        try:
            text = select(out, spec)
        except CaptureError as exc:
            raise CaptureError(f"{self.page}: `{cmd}`: {exc}; it printed:\n{out}") from None
        if kind == "out":
            return text
        shown = shown.replace(" 2>/dev/null", "")
        return f"$ {shown}\n{text}" if text else f"$ {shown}"


def _endpoint(token: str, lines: list[str], search_from: int) -> int:
    m = re.fullmatch(r"(\d+|\$|/(.*)/)([+-]\d+)?", token.strip())
    if not m:
        raise CaptureError(f"bad line selector {token!r}")
    base, pattern, offset = m.groups()
    if pattern is not None:
        found = next((i for i in range(max(search_from, 1), len(lines) + 1)
                      if re.search(pattern, lines[i - 1])), None)
        if found is None:
            raise CaptureError(f"no line from {search_from} on matches /{pattern}/")
        n = found
    else:
        n = len(lines) if base == "$" else int(base)
    return n + int(offset or 0)


def select(text: str, spec: str | None) -> str:
    """The lines of ``text`` that ``spec`` selects (module docstring), with
    ``...`` for every gap, at the start and at the end included."""
    if not spec:
        return text
    lines = text.split("\n")
    out: list[str] = []
    last = 0
    for part in spec.split(","):
        part = part.strip()
        legacy = re.fullmatch(r"(\d+)-(\d*)", part)
        if legacy:
            a = int(legacy.group(1))
            b = int(legacy.group(2)) if legacy.group(2) else len(lines)
        elif ".." in part:
            first, second = part.split("..", 1)
            a = _endpoint(first, lines, last + 1)
            b = _endpoint(second, lines, a)
        else:
            a = b = _endpoint(part, lines, last + 1)
        if not 1 <= a <= b <= len(lines) or a <= last:
            raise CaptureError(f"line range {part!r} is {a}-{b} of {len(lines)} lines "
                               f"(after line {last})")
        if a > last + 1:
            out.append("...")
        out += lines[a - 1:b]
        last = b
    if last < len(lines):
        out.append("...")
    return "\n".join(out)


def apply_edits(edit_file: Path, cwd: Path) -> None:
    """Apply an edit file's replacements (module docstring) under ``cwd``."""
    name = edit_file.name
    lines = edit_file.read_text(encoding="utf-8").split("\n")
    target: Path | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("@@ "):
            target = cwd / line[3:].strip()
            i += 1
        elif line == "<<<<<<<":
            try:
                mid = lines.index("=======", i + 1)
                end = lines.index(">>>>>>>", mid + 1)
            except ValueError:
                raise CaptureError(f"{name}:{i + 1}: block not closed") from None
            if target is None:
                raise CaptureError(f"{name}:{i + 1}: block before any `@@ FILE` line")
            old, new = "\n".join(lines[i + 1:mid]), "\n".join(lines[mid + 1:end])
            text = target.read_text(encoding="utf-8")
            if text.count(old) != 1:
                raise CaptureError(
                    f"{name}:{i + 1}: the text to replace occurs {text.count(old)} times in "
                    f"{target.relative_to(cwd)}, not once (did the shipped rules change?):\n"
                    f"{old}")
            target.write_text(text.replace(old, new), encoding="utf-8")
            i = end + 1
        elif not line.strip() or line.startswith("#"):
            i += 1
        else:
            raise CaptureError(f"{name}:{i + 1}: unexpected line {line!r}")


def csv_table(path: Path) -> str:
    """A Markdown table of a batch CSV: the outcome and each track's decision,
    with the next exercise where the track moves."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))

    def track(row: dict[str, str], name: str) -> str:
        decision, nxt = row[f"{name}_decision"], row[f"{name}_next_exercise"]
        if nxt and decision not in ("hold", "refer"):
            return f"{decision} → `{nxt}`"
        return decision

    out = ["| case | outcome | straight knee | bent knee | energy storage |",
           "|---|---|---|---|---|"]
    out += [f"| {r['case_id']} | {r['outcome']} | {track(r, 'straight_knee')} | "
            f"{track(r, 'bent_knee')} | {track(r, 'energy_storage')} |" for r in rows]
    return "\n".join(out)


def fill_template(template: str, page: str, bin_dir: Path) -> str:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX) as tmp:
        return Capture(page, Path(tmp), bin_dir).fill(text)


# ---------------------------------------------------------------- pages


def tutorial_page(filled: str) -> str:
    return _notice(TUTORIAL_TEMPLATE) + "\n" + filled.rstrip("\n") + "\n"


def worked_block(filled: str) -> str:
    """What goes between the worked-example markers (markers excluded)."""
    return "\n" + _notice(WORKED_TEMPLATE) + "\n" + filled.strip("\n") + "\n"


def split_worked(page: str) -> tuple[str, str, str]:
    """``page`` as (before and the start marker, the block, the end marker and after)."""
    if page.count(WORKED_START) != 1 or page.count(WORKED_END) != 1:
        raise CaptureError(f"docs/rule-language.md must hold {WORKED_START} and {WORKED_END} "
                           "once each")
    head, rest = page.split(WORKED_START, 1)
    block, tail = rest.split(WORKED_END, 1)
    return head + WORKED_START, block, WORKED_END + tail


_NORMALISE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b[0-9a-f]{32}\b"), "<id>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
                r"(?:Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"(last hash )[0-9a-f]{64}\b"), r"\1<hash>"),
    (re.compile(r"\bin \d+(?:\.\d+)? s \(\d+(?:\.\d+)? cases/s"), "in <t> s (<n> cases/s"),
    (re.compile(r"\S*" + re.escape(TMP_PREFIX) + r"[A-Za-z0-9_]+"), "<tmp>"),
]


def normalise(text: str) -> str:
    """``text`` with what legitimately differs between two runs replaced."""
    for prefix in {full[:8] for full in re.findall(r"\b[0-9a-f]{32}\b", text)}:
        text = re.sub(rf"\b{prefix}\b", "<id8>", text)
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    return text


def short_diff(old: str, new: str, name: str, limit: int = 60) -> str:
    lines = list(difflib.unified_diff(
        normalise(old).splitlines(), normalise(new).splitlines(),
        f"{name} (on disk)", f"{name} (from the program now)", n=2, lineterm=""))
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more diff lines)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the pages instead of writing them; exit 1 if stale")
    parser.add_argument("--force", action="store_true",
                        help="write the pages even if only ids and times differ")
    args = parser.parse_args(argv)

    try:
        bin_dir = calfrehab_bin_dir()
        jobs: dict[str, Callable[[], str]] = {
            "tutorial": lambda: fill_template(TUTORIAL_TEMPLATE, "docs/tutorial.md", bin_dir),
            "worked": lambda: fill_template(WORKED_TEMPLATE, "docs/rule-language.md", bin_dir),
        }
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = {key: pool.submit(job) for key, job in jobs.items()}
            filled = {key: future.result() for key, future in futures.items()}
        head, old_block, tail = split_worked(RULE_LANGUAGE_PAGE.read_text(encoding="utf-8"))
    except CaptureError as exc:
        print(f"capture_docs: {exc}", file=sys.stderr)
        return 2

    old_tutorial = TUTORIAL_PAGE.read_text(encoding="utf-8") if TUTORIAL_PAGE.exists() else ""
    new_tutorial = tutorial_page(filled["tutorial"])
    new_block = worked_block(filled["worked"])
    pages: list[tuple[str, str, str, Callable[[], object]]] = [
        ("docs/tutorial.md", old_tutorial, new_tutorial,
         lambda: TUTORIAL_PAGE.write_text(new_tutorial, encoding="utf-8")),
        ("docs/rule-language.md (worked example)", old_block, new_block,
         lambda: RULE_LANGUAGE_PAGE.write_text(head + new_block + tail, encoding="utf-8")),
    ]

    stale = 0
    for name, old, new, write in pages:
        same = normalise(old) == normalise(new)
        if args.check:
            if not same:
                stale += 1
                print(f"{name} is stale: run `python scripts/capture_docs.py`\n"
                      f"{short_diff(old, new, name)}\n")
        elif same and not args.force:
            print(f"{name}: up to date (only ids and times would change)")
        else:
            write()
            print(f"{name}: written")
    if args.check:
        print("tutorial and worked example up to date" if not stale
              else f"{stale} page(s) stale")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
