"""Manifests: the sha256 and size of every file a run directory's readers load.

Each folder that holds data (the run directory itself, and each ``cells/<cell>/``) keeps a
``manifest.json`` naming its files (``checkpoints/`` and ``samples/`` belong to their cell's)::

    {"format": "autophagy.store.manifest/1", "checksum": "<sha256 of the files entry>",
     "files": {"metrics.parquet": {"sha256": "...", "size": 4120}, ...}}

so a truncated, corrupted or foreign file is caught before it is read, and a directory received
from someone else can be checked without running anything (``autophagy verify DIR``).

Every write goes through :func:`write`, which keeps the manifest true at every instant a process
can be killed: it first records the new file's hash as ``pending`` (the old one stays valid), then
writes the file atomically, then confirms the new hash. After a crash a file therefore matches
either its confirmed or its pending hash, and anything else is damage, never a false alarm.
:func:`remove` marks files ``deleting`` before unlinking them, for the same reason. Hidden
``.*.tmp`` files are writes a kill interrupted; nothing reads them.

The manifest also covers ``cell.json``, although its status changes at every generation: it holds
the cell's coordinates (policy, lambda, seed, label), which are joined onto every metric row, and
the status that tells ``resume`` to skip a cell, so a flipped byte there would be a silently
wrong label or a skipped cell. The cost is two small manifest writes per status change.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from autophagy.atomic import atomic_write_bytes, fsync_dir
from autophagy.errors import IntegrityError, OldFormatError, WriteError  # noqa: F401

NAME = "manifest.json"
FORMAT = "autophagy.store.manifest/1"
SUBFOLDERS = ("checkpoints", "samples")
"""Subfolders whose files belong to the enclosing folder's manifest."""
DATA_SUFFIXES = (".json", ".yaml", ".parquet", ".npy", ".png", ".safetensors")
"""Top-level files a manifest must list; others (``error.txt``, ``report.html``) are not read."""


UNLISTED = "not in the manifest (a foreign file?)"


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str

    def line(self, base: Path | None = None) -> str:
        path = self.path
        if base is not None and path.is_relative_to(base):
            path = path.relative_to(base)
        return f"{path}: {self.reason}"


@dataclass
class Verification:
    """What :func:`verify_run` found: problems, and how much it checked."""

    problems: list[Problem] = field(default_factory=list)
    cells: int = 0
    files: int = 0
    bytes: int = 0


def folder_of(path: Path) -> Path:
    """The folder whose manifest covers ``path``: a cell's, for its checkpoints and samples."""
    parent = Path(path).parent
    return parent.parent if parent.name in SUBFOLDERS else parent


def digest(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _measure(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            sha = hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        return None
    return {"sha256": sha, "size": path.stat().st_size}


class Manifest:
    """The ``manifest.json`` of one folder, read and written whole (it is small)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / NAME

    def entries(self) -> dict[str, dict[str, Any]]:
        """``{relative path: entry}``; empty when there is no manifest yet.

        Raises:
            IntegrityError: the manifest is not JSON, has another format, or fails its checksum.
        """
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(text)
            files = doc["files"]
            ok = doc.get("format") == FORMAT and doc.get("checksum") == _checksum(files)
            ok = ok and _well_typed(files)
        except (ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            raise IntegrityError(f"{self.path}: damaged (not a manifest, or its checksum differs)")
        return files

    def save(self, files: dict[str, dict[str, Any]], *, durable: bool = False) -> None:
        doc = {"format": FORMAT, "checksum": _checksum(files), "files": files}
        text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
        atomic_write_bytes(self.path, text.encode(), durable=durable)


def _digest_ok(d: Any) -> bool:
    return (isinstance(d, dict) and isinstance(d.get("sha256"), str)
            and type(d.get("size")) is int)


def _well_typed(files: Any) -> bool:
    """``files`` maps relative paths to entries: a confirmed digest and/or a ``pending`` one,
    and maybe ``deleting: true`` (a manifest sealed by a sender can be of any JSON type)."""
    if not isinstance(files, dict):
        return False
    for rel, entry in files.items():
        if not isinstance(entry, dict) or not rel or set(entry) - {"sha256", "size", "pending",
                                                                     "deleting"}:
            return False
        if ("sha256" in entry or "size" in entry) and not _digest_ok(entry):
            return False
        if "pending" in entry and not _digest_ok(entry["pending"]):
            return False
        if "deleting" in entry and entry["deleting"] is not True:
            return False
    return True


def _checksum(files: Any) -> str:
    canonical = json.dumps(files, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _confirmed(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in ("sha256", "size") if k in entry}


def write(path: Path, data: bytes, *, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically and record it in its folder's manifest.

    A failed write raises :class:`~autophagy.errors.WriteError` (``DiskFullError``,
    ``NotWritableError``, ...) naming ``path``; the manifest and the old file stay valid.
    """
    update([(Path(path), data, durable)])
    return Path(path)


def remove(paths: Iterable[Path]) -> None:
    """Delete files of one folder and drop them from its manifest."""
    update([], remove=paths)


def update(writes: Sequence[tuple[Path, bytes, bool]], *, remove: Iterable[Path] = ()) -> None:
    """Write files of one folder (``(path, data, durable)``, in order), then delete ``remove``,
    with two manifest saves in all: one recording the new hashes as pending and the removed
    files as deleting, one after the last file confirming them (a generation's metrics and
    checkpoint, and with ``checkpoints: last`` the older checkpoint, are one update).

    When any write is durable the whole update is (each file and both manifest saves fsynced,
    then their directory, deletions too), so after a power cut each step is on disk before the
    next: a new checkpoint is never on disk without the manifest that lists it."""
    paths = [Path(p) for p, _, _ in writes]
    removed = [Path(p) for p in remove]
    if not paths and not removed:
        return
    durable = any(d for _, _, d in writes)
    manifest = Manifest(folder_of((paths or removed)[0]))
    rel = {p: p.relative_to(manifest.folder).as_posix() for p in [*paths, *removed]}
    current = None
    try:
        files = manifest.entries()
        new = {rel[p]: digest(data) for p, data, _ in writes}
        changed = {r: d for r, d in new.items() if files.get(r) != d}
        for r, d in changed.items():
            files[r] = {**_confirmed(files.get(r, {})), "pending": d}
        for p in removed:
            if rel[p] in files:
                files[rel[p]] = {**files[rel[p]], "deleting": True}
        if changed or removed:
            manifest.save(files, durable=durable)
        for current, data, _ in writes:
            atomic_write_bytes(current, data, durable=durable)
        current = None
        for p in removed:
            p.unlink(missing_ok=True)
        if durable:
            for folder in sorted({p.parent for p in removed}):
                fsync_dir(folder)
        for p in removed:
            files.pop(rel[p], None)
        files.update(changed)
        if changed or removed:
            manifest.save(files, durable=durable)
    except OSError as err:
        where = current or manifest.path
        raise WriteError.of(err, where) from err


def judge(entry: dict[str, Any] | None, actual: dict[str, Any] | None) -> str | None:
    """Why a file (``actual``: its digest, or ``None`` when absent) fails its entry, or ``None``."""
    if entry is None:
        return None if actual is None else UNLISTED
    if actual is None:
        new_file = "sha256" not in entry  # a first write was in flight
        return None if new_file or entry.get("deleting") else "missing"
    candidates = [_confirmed(entry), entry.get("pending")]
    if actual in candidates:
        return None
    expected = entry.get("size", entry.get("pending", {}).get("size"))
    if isinstance(expected, int) and actual["size"] < expected:
        return f"truncated ({actual['size']} of {expected} bytes)"
    return "corrupted (its sha256 differs from the manifest)"


def check_bytes(path: Path, data: bytes) -> str | None:
    """Why ``data``, read from ``path``, is not what the manifest recorded there, or ``None``."""
    path = Path(path)
    folder = folder_of(path)
    entry = Manifest(folder).entries().get(path.relative_to(folder).as_posix())
    return judge(entry, digest(data))


def data_files(folder: Path) -> list[Path]:
    """The files of ``folder`` its manifest must list (what :func:`seal` would record)."""
    folder = Path(folder)
    found = [
        p for p in folder.iterdir() if p.is_file() and p.suffix in DATA_SUFFIXES and p.name != NAME
    ]
    for sub in SUBFOLDERS:
        if (folder / sub).is_dir():
            found += [p for p in (folder / sub).iterdir() if p.is_file()]
    return sorted(p for p in found if not p.name.startswith(".") and p.suffix != ".pkl")


def seal(folder: Path) -> int:
    """Hash the files of ``folder`` now on disk into a fresh manifest, vouching for them.

    For :func:`autophagy migrate <autophagy.cli.migrate>` (old directories have no manifest)
    and for tests that edit a directory by hand. Returns the number of files recorded.
    """
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): _measure(p) for p in data_files(folder)}
    Manifest(folder).save(files)
    return len(files)


def check_folder(folder: Path, *, checkpoints: bool = True) -> tuple[list[Problem], int, int]:
    """Check every file of ``folder`` against its manifest: (problems, files, bytes checked).

    ``checkpoints=False`` skips ``checkpoints/`` (``report`` never reads them, and ``resume``
    checks each cell's newest one as it loads it, falling back to an older one).
    """
    folder = Path(folder)
    manifest = Manifest(folder)
    if not manifest.path.exists():
        return [Problem(manifest.path, "missing: the folder's files cannot be checked")], 0, 0
    try:
        files = manifest.entries()
    except IntegrityError:
        return [Problem(manifest.path, "damaged (not a manifest, or its checksum differs)")], 0, 0

    def wanted(rel: str) -> bool:
        return checkpoints or not rel.startswith("checkpoints/")

    problems, n_files, n_bytes = [], 0, 0
    for rel, entry in sorted(files.items()):
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts:
            problems.append(Problem(manifest.path, f"names a path outside its folder: {rel!r}"))
            continue
        if not wanted(rel):
            continue
        actual = _measure(folder / rel)
        reason = judge(entry, actual)
        if reason:
            problems.append(Problem(folder / rel, reason))
        elif actual is not None:
            n_files, n_bytes = n_files + 1, n_bytes + actual["size"]
    for p in data_files(folder):
        rel = p.relative_to(folder).as_posix()
        if rel not in files and wanted(rel):
            problems.append(Problem(p, UNLISTED))
    return problems, n_files, n_bytes


def old_checkpoints(root: Path) -> list[Path]:
    """Pickle checkpoints (``gen_*.pkl``) of a run directory written by an older autophagy."""
    return sorted(Path(root).glob("cells/*/checkpoints/gen_*.pkl"))


def _old_format(root: Path, old: list[Path]) -> str:
    cells = {p.parent.parent for p in old}
    return (
        f"old-format run directory ({len(old)} pickle checkpoints in {len(cells)} cells); this "
        f"version reads only data files: convert it with 'autophagy migrate {root}' (it "
        "unpickles them: only for a directory you trust)"
    )


def foreign_entries(root: Path) -> list[Problem]:
    """Symbolic links and special files (FIFOs, devices) anywhere inside ``root``.

    Why: autophagy writes only regular files and folders, and a received directory with a link
    to elsewhere would have ``resume`` and ``report`` read, or write, outside it (a linked
    ``checkpoints/`` or ``figures/``), and a FIFO would make ``verify`` wait forever. Links are
    not followed (``os.walk`` does not descend into them)."""
    found = []
    for folder, dirs, files in os.walk(root):
        for name in sorted([*dirs, *files]):
            path = Path(folder) / name
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                found.append(Problem(path, f"a symbolic link (to {os.readlink(path)!r}); a run "
                                     "directory holds only its own files: copy it without links"))
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                found.append(Problem(path, "not a regular file (a FIFO, socket or device)"))
    return found


def verify_run(root: Path, *, checkpoints: bool = True) -> Verification:
    """Check a run directory (its own manifest and every cell's) without running anything."""
    root = Path(root)
    result = Verification()
    old = old_checkpoints(root)
    if old:
        result.problems.append(Problem(root, _old_format(root, old)))
        return result
    result.problems += foreign_entries(root)
    if result.problems:  # nothing is read through a link or from a FIFO
        return result
    folders = [root]
    if (root / "cells").is_dir():
        cells = sorted(p for p in (root / "cells").iterdir() if p.is_dir())
        result.cells = len(cells)
        folders += [c for c in cells if any(c.iterdir())]
    for folder in folders:
        problems, n_files, n_bytes = check_folder(folder, checkpoints=checkpoints)
        result.problems += problems
        result.files += n_files
        result.bytes += n_bytes
    return result


def check_run(root: Path) -> None:
    """Refuse a run directory that ``resume`` or ``report`` cannot trust, in one line.

    Raises:
        OldFormatError: it holds pickle checkpoints (``autophagy migrate`` converts them).
        IntegrityError: a file other than a checkpoint fails its manifest (the first is named).
    """
    root = Path(root)
    old = old_checkpoints(root)
    if old:
        raise OldFormatError(f"{root}: {_old_format(root, old)}")
    problems = verify_run(root, checkpoints=False).problems
    if problems:
        more = f" ({len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise IntegrityError(
            f"{problems[0].line()}{more}; 'autophagy verify {root}' lists every problem"
        )
