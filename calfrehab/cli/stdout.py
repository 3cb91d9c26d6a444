"""Writing a command's result to standard output, and saying so cleanly
when that fails.

A full disk or a failing device behind standard output (``calfrehab next
case.json > /dev/full``) raised OSError from ``click.echo``: a traceback,
and then, at exit, the interpreter's own failed flush of the same buffer
("Exception ignored ... No space left on device", status 120). Here the
failure becomes an OutputError (one line on standard error, status 1
through ``domain_errors``), and standard output is pointed at the null
device first so that nothing later (the quick exit's flush, the
interpreter's) tries the broken output again: the recipe the Python
documentation gives for a closed pipe.

A closed pipe (``calfrehab next x.json | head -1``) is not a failure of
this kind: BrokenPipeError goes on as it always has.
"""

from __future__ import annotations

import os
import sys

import click

from calfrehab.engine import api


def say(text: str, nl: bool = True) -> None:
    """``click.echo(text, nl=nl)`` to standard output; an OSError other than
    a closed pipe becomes an OutputError naming standard output."""
    try:
        click.echo(text, nl=nl)
    except BrokenPipeError:
        raise
    except OSError as exc:
        _discard_stdout()
        raise api.OutputError(
            f"cannot write standard output: {exc.strerror or exc}") from None


def _discard_stdout() -> None:
    # What is still buffered can never be written: later flushes go to the
    # null device instead of failing again (and printing at exit).
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's capture): nothing will flush it
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)
