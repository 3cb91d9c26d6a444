"""Help text whose examples copy and paste: one command per line.

click rewraps every paragraph of a command's help to the terminal's width,
so a long example command broke mid-command with no backslash, and pasting
it ran half a command. A paragraph of indented ``calfrehab ...`` lines is
marked with click's no-rewrap marker (a line holding only ``\\b``) and
printed as written.
"""

from __future__ import annotations

import inspect

import click

NO_REWRAP = "\b"


def _one_per_line(lines: list[str]) -> list[str]:
    """Example lines with a command the source wrapped joined back into
    one line (a line ending in a backslash continues, as in a shell)."""
    out: list[str] = []
    for ln in lines:
        if out and not ln.strip().startswith(("calfrehab ", "#")) and not out[-1].endswith("\\"):
            out[-1] = f"{out[-1]} {ln.strip()}"
        else:
            out.append(ln)
    return out


def _mark(help_text: str) -> str:
    paragraphs = inspect.cleandoc(help_text).split("\n\n")
    out = []
    for p in paragraphs:
        lines = p.splitlines()
        is_example = bool(lines) and all(ln.startswith((" ", "\t")) for ln in lines) and any(
            ln.strip().startswith("calfrehab ") for ln in lines)
        if is_example and not p.startswith(NO_REWRAP):
            p = NO_REWRAP + "\n" + "\n".join(_one_per_line(lines))
        out.append(p)
    return "\n\n".join(out)


def keep_examples(command: click.Command) -> click.Command:
    """The command (and its subcommands) with example paragraphs unwrapped."""
    if command.help and not getattr(command, "_examples_kept", False):
        command.help = _mark(command.help)
        command._examples_kept = True  # type: ignore[attr-defined]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            keep_examples(sub)
    return command
