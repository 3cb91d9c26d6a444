"""Leaving a finished one-shot command without the interpreter's teardown.

After ``calfrehab next`` has printed its decision, CPython still tears down
every module, class and pydantic validator the engine built (tens of
thousands of objects, freed one by one): several milliseconds of a cold
``next``, for nothing anyone reads (issue 28 item 4, cold start).
``os._exit`` skips that. It also skips what the teardown would do for
others, so it is taken only when none of that is pending:

- the command is one that finishes all its work before it returns
  (:data:`QUICK_COMMANDS`): its case files, trails (SQLite connections)
  and locks are closed by ``with`` blocks inside the command, and it
  starts no thread or child process;
- the process runs the command line itself: the console script and
  ``python -m calfrehab.cli`` call ``cli()`` with no arguments, while
  click's CliRunner (the tests) calls ``cli.main`` and a program that
  embeds the command line passes its own arguments; both keep the normal
  ``SystemExit``;
- no other thread runs (the interpreter would wait for it);
- every ``atexit`` handler is run first, as the interpreter would run
  it, in the same order (logging's flush, filelock's release of a lock
  still held, the command line's own ``gc.freeze``): only the teardown of
  modules and the finalisers of objects still alive are skipped, which
  CPython never promised to run at exit (the data model's note on
  ``__del__``) and nothing of calfrehab relies on;
- standard output and standard error flush without error; a closed pipe
  (``calfrehab next x.json | head -1``) leaves the interpreter to report
  it as it always has.

The exit status is the one ``SystemExit`` carries; a status that is not
a number (a message) also goes the usual way.
"""

from __future__ import annotations

import atexit
import os
import sys

# The commands whose work is all done, closed and flushed when click
# returns (see the module's docstring); not `serve`, `app` or `batch`,
# which run servers, threads or worker processes.
QUICK_COMMANDS = frozenset({"next", "validate", "explain", "schema"})


def leave(code: object, command: str | None) -> bool:
    """End the process at once with ``code`` if that loses nothing (see
    the module's docstring); otherwise return False, and the caller
    re-raises its ``SystemExit``."""
    if command not in QUICK_COMMANDS:
        return False
    if code is None:
        code = 0
    if not isinstance(code, int):
        return False
    # atexit._run_exitfuncs is CPython's (3.11 to 3.13 have it): the
    # handlers the interpreter would run at exit, last registered first,
    # each one's exception reported and the rest still run.
    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_handlers is None:
        return False
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return False
    run_handlers()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return False
    os._exit(code & 0xFF)  # as the interpreter passes it to exit()
