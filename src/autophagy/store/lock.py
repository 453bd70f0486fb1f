"""One writer per run directory: an advisory lock on ``RUN/.lock`` naming the writer.

Two ``autophagy resume DIR`` at once both ran every cell and wrote the same checkpoints and
manifests over each other; now the second is refused in one line naming the first (pid, host,
since when). ``run``, ``resume`` and ``report`` hold the lock while they write; ``verify`` and
``report`` read it to tell a live run from an interrupted one.

Why :func:`fcntl.flock` on an open file, and not a lock file whose existence is the lock, nor
the ``filelock`` package:

- the kernel drops a ``flock`` when its holder dies, ``kill -9`` included, so a dead writer's
  lock is stale by construction: the next writer takes it, nothing to clean up, no pid guessing
  (a pid can be reused; a host name says nothing about a process on another machine);
- the file stays and holds the holder's pid, host and start time as JSON, written only once the
  lock is held, so a refused writer can say who holds it. ``filelock`` also uses ``flock`` on
  Unix but opens the file with ``O_TRUNC`` on every attempt, which would wipe that record, and
  would be a dependency for a dozen lines;
- it is advisory: it guards autophagy against itself, not against ``rm``.

On NFS, Linux maps ``flock`` to NFS byte-range locks, so two hosts sharing a directory see each
other's lock. Where the file system has no locks at all (``ENOLCK``, ``EOPNOTSUPP``), the record
alone is used: a live pid on this host holds the directory, anything else is stale.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from autophagy.errors import AutophagyError, StoreError, WriteError

NAME = ".lock"
"""The lock file in the run directory (hidden: manifests and ``verify`` skip dot files)."""
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


class RunLocked(AutophagyError):
    """Another live process writes this run directory (it is named: pid, host, since when)."""

    def __init__(self, root: Path, holder: Holder | None):
        self.root, self.holder = Path(root), holder
        who = holder.describe() if holder else "another process"
        super().__init__(
            f"{self.root} is being written by {who}; one writer per run directory: wait for it "
            f"to finish (or stop it), then 'autophagy resume {self.root}'"
        )


@dataclass(frozen=True)
class Holder:
    """Who took the lock: the record in the lock file."""

    pid: int | None
    host: str
    since: str
    command: str = ""
    previous: Holder | None = None
    """The record of a writer that died holding the lock, when this one took it over."""

    def describe(self) -> str:
        what = f"'autophagy {self.command}' " if self.command else ""
        return f"{what}pid {self.pid} on {self.host} (since {self.since})"

    @classmethod
    def read(cls, path: Path) -> Holder | None:
        """The record in ``path``, or ``None`` if there is none (empty, missing, not ours)."""
        try:
            if not Path(path).is_file():  # a FIFO would block the read forever
                return None
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def from_dict(cls, doc: dict) -> Holder:
        previous = cls.from_dict(doc["previous"]) if doc.get("previous") else None
        return cls(int(doc["pid"]), str(doc["host"]), str(doc["since"]),
                   str(doc.get("command", "")), previous)

    def to_dict(self) -> dict:
        return {"pid": self.pid, "host": self.host, "since": self.since, "command": self.command,
                "previous": self.previous.to_dict() if self.previous else None}

    @property
    def is_me(self) -> bool:
        return (self.pid, self.host) == (os.getpid(), socket.gethostname())


def _me(command: str, previous: Holder | None) -> Holder:
    since = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return Holder(os.getpid(), socket.gethostname(), since, command, previous)


def _alive_here(holder: Holder | None) -> bool:
    """Without kernel locks: does the record name a live process on this host?"""
    if holder is None or holder.pid is None or holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return holder.pid != os.getpid()


class RunLock:
    """The writer's lock on ``root``: :meth:`acquire` or refuse, :meth:`release` (or exit)."""

    def __init__(self, root: Path, command: str = ""):
        self.root, self.command = Path(root), command
        self.path = self.root / NAME
        self._fd: int | None = None
        self.stale: Holder | None = None
        """The record of a previous writer that died holding the lock (``None`` if none)."""

    def acquire(self, *, attempts: int = 10, wait: float = 0.05) -> RunLock:
        """Take the lock or raise :class:`RunLocked`; a few quick retries cover a reader's brief
        shared probe (:func:`holder`).

        Raises:
            RunLocked: a live process holds it.
            WriteError: the lock file cannot be created (a read-only or full file system).
        """
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o644)
        except OSError as err:
            raise WriteError.of(err, self.path) from err
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a received FIFO, socket or device
            os.close(fd)
            raise StoreError(f"{self.path}: the run's lock file is not a regular file (a FIFO, "
                             "socket or device); remove it, then run the command again")
        try:
            for attempt in range(attempts):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == attempts - 1:
                        raise RunLocked(self.root, Holder.read(self.path)) from None
                    time.sleep(wait)
                except OSError as err:
                    if err.errno not in _NO_LOCKS:
                        raise
                    if _alive_here(Holder.read(self.path)):  # no kernel locks: trust the record
                        raise RunLocked(self.root, Holder.read(self.path)) from None
                    break
            self.stale = Holder.read(self.path)  # a record left by a writer that died
            previous = replace(self.stale, previous=None) if self.stale else None
            record = json.dumps(_me(self.command, previous).to_dict()).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
        except BaseException as err:
            os.close(fd)
            if isinstance(err, OSError) and not isinstance(err, AutophagyError):
                raise WriteError.of(err, self.path) from err
            raise
        self._fd = fd
        return self

    def release(self, *, finished: bool = True) -> None:
        """Clear the record and unlock (the file stays: removing it would race a new writer).

        ``finished=False`` (``report``, which finishes no cell) puts back the record of a dead
        writer it took over, so ``verify`` can still name the run's last writer."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            if not finished and self.stale is not None:
                os.pwrite(self._fd, json.dumps(self.stale.to_dict()).encode(), 0)
        except OSError:
            pass  # the kernel lock goes with the close either way
        os.close(self._fd)
        self._fd = None


@contextmanager
def hold(root: Path, command: str = "") -> Iterator[RunLock]:
    """``with hold(run_dir, "resume"):`` the one writer of ``run_dir`` for the block."""
    lock = RunLock(root, command).acquire()
    try:
        yield lock
    finally:
        lock.release()


def holder(root: Path) -> Holder | None:
    """The live writer of ``root`` other than this process, or ``None`` when none holds it
    (finished, or died; or this process itself, which knows what it is doing).

    A shared, non-blocking probe: it never waits and never takes the directory from a writer;
    read-only directories (no lock file, or one this user cannot lock) read as not held.
    """
    path = Path(root) / NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the probe
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # not a lock any writer of ours holds
            return None
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        record = Holder.read(path)
        return None if record is not None and record.is_me else record or Holder(None, "?", "?")
    except OSError as err:
        record = Holder.read(path)
        return record if err.errno in _NO_LOCKS and _alive_here(record) else None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


RUNNERS = ("run", "resume", "")
"""Commands that advance cells ("" for a holder whose record is not readable yet)."""


def runner(root: Path) -> Holder | None:
    """The live writer of ``root`` if it runs cells (``run``, ``resume``), not a ``report``."""
    found = holder(root)
    return found if found is not None and found.command in RUNNERS else None


def last_writer(root: Path) -> Holder | None:
    """The record the last writer left if it died holding the lock (a clean exit clears it);
    when this process holds the lock, the dead writer it took over from."""
    record = Holder.read(Path(root) / NAME)
    return record.previous if record is not None and record.is_me else record


@contextmanager
def hold_unless_running(root: Path, command: str = "") -> Iterator[RunLock | None]:
    """The lock for a reader that also writes (``report``): held if no other process runs the
    directory, else ``None`` and the caller writes into no manifest (a report of a live run is
    a snapshot, rebuilt from what is on disk).

    Raises:
        WriteError: the lock file cannot be created (a read-only or full file system).
    """
    try:
        lock = RunLock(root, command).acquire()
    except RunLocked:
        yield None
        return
    try:
        yield lock
    finally:
        lock.release(finished=False)
