"""Is a run directory finished, still running, or interrupted; and how a run stops.

A cell's ``cell.json`` says ``running`` from its first generation until its last, so after a
``kill -9``, a Ctrl-C or a SIGTERM every unfinished cell still says ``running``. Whether that is
true is read from the run's lock (:mod:`autophagy.store.lock`): a live writer holds it, a dead one
does not. So ``verify`` and ``report`` say "interrupted" instead of calling such a directory
clean or its curves final, and a stopped run always ends with the same resume hint.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from autophagy.store import lock
from autophagy.store.run_store import RunStore

FINAL = frozenset({"done", "diverged", "failed"})
"""Cell statuses that no later writer changes (``resume`` retries failed ones, still final)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, as a cluster scheduler sends it: handled exactly like Ctrl-C (the same
    resumable state and resume hint), exit code 143 (128 + 15) instead of 130."""

    exit_code = 143


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``).

    Why: Python's default SIGTERM ends the process at once, without a word and without the
    cleanup a Ctrl-C gets (worker processes stopped, the resume hint printed). The checkpoints
    make both safe; this makes them look the same. Only the main thread can set a handler, so
    elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class RunState:
    """Where a run directory stands: its cells' statuses and its writer."""

    root: Path
    statuses: dict[str, str | None] = field(default_factory=dict)
    writer: lock.Holder | None = None
    """The live process running its cells (``run``, ``resume``), if any."""
    holder: lock.Holder | None = None
    """The live process holding its lock (a runner, or a ``report``), if any."""
    last_writer: lock.Holder | None = None
    """The record a writer left when it died holding the lock."""

    @property
    def unfinished(self) -> list[str]:
        return [c for c, s in self.statuses.items() if s not in FINAL]

    @property
    def interrupted(self) -> bool:
        return bool(self.unfinished) and self.writer is None

    def line(self) -> str | None:
        """One line saying the run is unfinished (running or interrupted), or ``None``."""
        n, total = len(self.unfinished), len(self.statuses)
        if not n:
            return None
        cells = f"{n} of {total} cell{'s' * (total != 1)} unfinished"
        if self.writer is not None:
            return f"{self.root}: still running ({cells}; written by {self.writer.describe()})"
        gone = f"; its writer, {self.last_writer.describe()}, is gone" if self.last_writer else ""
        return (f"{self.root}: interrupted ({cells}{gone}); its results are partial: continue "
                f"with 'autophagy resume {self.root}'")


def run_state(root: Path) -> RunState:
    """Read the cells' ``cell.json`` statuses and the lock (writes nothing)."""
    store = RunStore(Path(root))
    statuses = {cid: _status(store.cell(cid)) for cid in store.cell_ids()}
    holder = lock.holder(root)
    writer = holder if holder is not None and holder.command in lock.RUNNERS else None
    return RunState(Path(root), statuses, writer, holder, lock.last_writer(root))


def _status(cell) -> str | None:
    try:
        return cell.info().get("status")
    except (OSError, ValueError, AttributeError):  # unreadable: verify names it on its own
        return None


def resume_hint(root: Path) -> str:
    return f"finished generations are saved; continue with 'autophagy resume {root}'"


def something_finished(root: Path) -> bool:
    """Whether any cell of ``root`` has a finished generation on disk (so resuming saves work)."""
    store = RunStore(Path(root))
    try:
        return any(store.cell(cid).generations_saved() for cid in store.cell_ids())
    except Exception:  # a damaged manifest: resume will name it
        return True


def stopped_by(err: BaseException, root: Path | None) -> str:
    """The one line for a run stopped by a failed write: the path and the cause, and the resume
    hint when a generation finished (nothing half-written is reported as a result)."""
    line = str(err)
    if root is not None and something_finished(root):
        line += f"; {resume_hint(root)}"
    return line
