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
        raise api.OutputError(message(exc)) from None


def message(exc: OSError) -> str:
    """What a failed write to standard output is reported as."""
    return f"cannot write standard output: {exc.strerror or exc}"


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


def click_output_failed(exc: OSError) -> bool:
    """Whether ``exc`` came from click itself writing standard output: its
    help (``--help``) or ``--version``, printed before any command runs and
    so before ``say`` could catch it. Then standard output is discarded, as
    ``say`` does, and the caller reports the same one line."""
    if isinstance(exc, BrokenPipeError):
        return False  # a closed pipe ends as it always has
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        # click.echo(..., err=False): standard output, not standard error
        if (frame.f_globals.get("__name__") == "click.utils" and frame.f_code.co_name == "echo"
                and not frame.f_locals.get("err")):
            _discard_stdout()
            return True
        tb = tb.tb_next
    return False
