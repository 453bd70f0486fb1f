"""Atomic file writes: a reader (or a resumed run) sees the old file or the whole new one.

Every file of a run directory goes through here: written to a hidden temporary name beside its
target, then ``os.replace``-d onto it, so a crash or Ctrl-C never leaves a torn checkpoint, table
or figure.

A power cut asks for more: the data and the rename must reach the disk in order. A durable write
is therefore: write the temporary file, ``fsync`` it, rename it, ``fsync`` the directory (the
rename lives in the directory). Checkpoints and the manifests that vouch for them are written so.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_open(
    path: str | os.PathLike, mode: str = "wb", *, durable: bool = False
) -> Iterator[IO]:
    """Open a hidden temp file beside ``path``; on success ``os.replace`` it onto ``path``.

    On error the temp file is removed and ``path`` is untouched. ``durable=True`` also fsyncs
    the file before the rename and its directory after it, so the new file survives a power
    loss, not just a killed process (checkpoints and manifests). Created with mode ``"x"``, so
    permissions follow the umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(
            tmp, mode.replace("w", "x"), **({} if "b" in mode else {"encoding": "utf-8"})
        ) as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_dir(folder: str | os.PathLike) -> None:
    """``fsync`` a directory, so that renames and deletions in it survive a power loss.

    A no-op on Windows, where a directory cannot be opened (NTFS journals its metadata)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = False) -> Path:
    with atomic_open(path, "wb", durable=durable) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)
