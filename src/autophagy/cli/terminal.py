"""Consoles for people at a terminal and for logs: wrapped at the terminal's width, or not at all.

Why: off a terminal (a log file, CI, ``| tee``) rich assumes 80 columns and breaks the lines a
program wrote whole: the run header puts half the run directory's path on a second line, a
table's caption wraps mid-sentence, and a later ``grep`` finds neither. There, a line is as long
as it is, unless ``COLUMNS`` gives a width, which rich honours everywhere.
"""

from __future__ import annotations

import os

from rich.console import Console

UNWRAPPED = 4096
"""The width of a console off a terminal: wide enough that tables keep their natural width and
captions one line, without rich padding anything to it (tables do not expand by default)."""


def make_console(*, stderr: bool = False) -> Console:
    """A rich console for stdout (or ``stderr``): the terminal's width when it is a terminal or
    ``COLUMNS`` is set, else no wrapping (``soft_wrap``) and tables as wide as they need."""
    console = Console(stderr=stderr)
    if console.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return console
    return Console(stderr=stderr, width=UNWRAPPED, soft_wrap=True)


def one_line(text: str) -> str:
    """``text`` with line breaks and control characters escaped as ``repr`` shows them.

    Why: messages quote names from files a user received (a config's field, a file in a run
    directory); a ``\\n``, ``\\x85`` or terminal escape in such a name must neither add a line
    to a one-line error nor move the cursor."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
