"""The ``autophagy`` command line: thin commands over the library.

:mod:`~autophagy.cli.commands` holds the run commands (run, resume, report, compare, list,
verify, migrate), :mod:`~autophagy.cli.theory` the ``theory`` group,
:mod:`~autophagy.cli.downstream` ``ensembles``, :mod:`~autophagy.cli.check` the
contract checks, :mod:`~autophagy.cli.progress`
the progress bars. A command parses, calls the library, prints; an
:class:`~autophagy.errors.AutophagyError` becomes one line and exit 2, anything else is a bug and
shows as one.
"""

from autophagy.cli import check, downstream, theory  # noqa: F401  (register their commands)
from autophagy.cli.commands import app, main

__all__ = ["app", "main"]
