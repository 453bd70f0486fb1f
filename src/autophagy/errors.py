"""Every error autophagy raises on purpose, under one base class.

Why one module: the command line catches :class:`AutophagyError` (and config validation) and
prints it as one line with exit 2; anything else is a bug in the project and shows as a
traceback, never as "bad input". Each class names what it is about (a config field, an
argument, a file), so the line says what to fix.

Classes that were ``ValueError`` before keep it as a second base, so library callers that catch
``ValueError`` keep working.
"""

from __future__ import annotations


class AutophagyError(Exception):
    """Base of every error autophagy raises on purpose (one line, naming what to fix)."""


class ConfigError(AutophagyError, ValueError):
    """A config problem, as one line naming the field and the fix."""


class InputError(AutophagyError, ValueError):
    """A value outside what a function accepts; the message names the argument and the range.

    The library's own checks raise it (a ``ValueError``, as numpy's would), so the command line
    can tell a refused input from a bug: a plain ``ValueError`` from deep inside is a bug.
    """


class ArgumentError(AutophagyError, ValueError):
    """A bad argument, named in library terms (``argument``: ``device``, ``path``, ``options``).

    Why a type: the command line maps it to the config field it came from (``model.options.device``)
    in one place (:func:`autophagy.config.config_field`) instead of every module speaking CLI.
    """

    def __init__(self, argument: str, message: str):
        super().__init__(f"{argument}: {message}")
        self.argument = argument
        self.detail = message


class ClusterError(ConfigError):
    """The Ray cluster ``run.address`` names cannot be reached, does not speak Ray, or refuses us.

    Why its own class: Ray reports these as ``ConnectionError``, an ``OSError``, which the command
    line would take for a full disk ("make room, then resume"). One line names ``run.address``
    and what to check; it is a ``ConfigError`` because the fix is the address (or the cluster).
    """


class UnknownName(AutophagyError, ValueError):
    """A name that no registry entry and no ``module:attr`` import resolves."""


class CheckpointRefused(ArgumentError):
    """A received checkpoint (pickle) asked for something outside the allow-list."""


class StoreError(AutophagyError, ValueError):
    """A run directory's file that cannot be read or trusted (one line naming the file)."""


class StateFileError(StoreError):
    """The bytes are not a checkpoint this version can read (truncated, damaged, foreign)."""


class CheckpointError(StoreError):
    """A checkpoint that cannot be trusted (one line naming the file and what is wrong)."""


class IntegrityError(StoreError):
    """A run directory's files do not match their manifest (one line naming the file)."""


class OldFormatError(StoreError):
    """A run directory written by an older autophagy, with pickle checkpoints."""


class MigrationError(StoreError):
    """An old checkpoint that could not be converted (one line naming it)."""


class DivergedError(AutophagyError, RuntimeError):
    """Training produced a non-finite or exploding loss, or non-finite samples.

    The loop records the cell as ``diverged`` (earlier generations kept) and the others go on:
    under self-consuming training a model can blow up after some generations, and that is a
    result, not a bug. ``step`` and ``loss`` say where training failed, when it did.
    """

    def __init__(self, message: str, *, step: int | None = None, loss: float | None = None):
        super().__init__(message)
        self.step = step
        self.loss = loss


class VerifierStarved(AutophagyError, RuntimeError):
    """A verifier accepted too few samples to fill a generation's training set within its cap
    of draws: the cell stops with one line naming the verifier and its acceptance rate."""


class NotBatchable(AutophagyError, ValueError):
    """These trainings cannot share one batch (different shapes, settings or batch sizes).

    Internal: the loop catches it and trains the cells one after another."""


class WriteError(AutophagyError, OSError):
    """A file of a run directory could not be written (``filename`` names it).

    Why its own kind: a failed write is not a cell's result. The cell must not be recorded as
    ``failed`` and the run must not go on to print verdicts on half the data: the run stops, in
    one line naming the path, and ``autophagy resume`` continues once the cause is gone. It is an
    ``OSError`` (same ``errno``, ``strerror``, ``filename``), so ``except OSError`` still catches
    it. Make one with :meth:`of`, which picks the subclass from the ``errno``.
    """

    hint = "cannot write there"

    def __str__(self) -> str:
        where = f"{self.filename}: " if self.filename else ""
        return f"{where}{self.strerror} ({self.hint})"

    @classmethod
    def of(cls, err: OSError, path: object = None) -> WriteError:
        """``err`` as the :class:`WriteError` its ``errno`` says, naming ``path`` (or the file
        ``err`` names). Classified by what it is: ENOSPC / EDQUOT a full disk, EROFS / EACCES /
        EPERM a folder not writable, anything else (EIO, ...) a plain :class:`WriteError`."""
        if isinstance(err, WriteError):
            return err
        import errno as codes

        kind = cls
        if err.errno in (codes.ENOSPC, codes.EDQUOT):
            kind = DiskFullError
        elif err.errno in (codes.EROFS, codes.EACCES, codes.EPERM):
            kind = NotWritableError
        where = path if path is not None else err.filename
        new = kind(err.errno, err.strerror or str(err), None if where is None else str(where))
        new.__cause__ = err
        return new


class DiskFullError(WriteError):
    """No space left (ENOSPC) or over quota (EDQUOT): make room, then resume."""

    hint = "the disk is full: make room"


class NotWritableError(WriteError):
    """A read-only file system (EROFS) or no permission (EACCES, EPERM)."""

    hint = "not writable: choose a folder you can write to, or fix its permissions"


class ContractError(AutophagyError, AssertionError):
    """A plugin (model, policy, metric, dataset) breaks a rule the loop relies on.

    Raised by :mod:`autophagy.testing` as one line, ``<Class>: <rule>: <what happened>``, so a
    plugin author learns which rule broke without reading a traceback. ``subject`` is the class
    (or name) checked, ``rule`` the rule's short name, ``detail`` what happened. An
    ``AssertionError`` too, so a failed check reads as a failed test under pytest.
    """

    def __init__(self, subject: str, rule: str, detail: str):
        super().__init__(f"{subject}: {rule}: {detail}")
        self.subject, self.rule, self.detail = subject, rule, detail
