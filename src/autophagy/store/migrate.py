"""Convert a run directory written by an older autophagy: pickle checkpoints, no manifests.

This is the one place autophagy unpickles its own files, and only ``autophagy migrate`` calls
it, after saying so and asking (``--yes`` skips the question). Unpickling runs whatever code the
file names, so a directory received from someone else must be trusted before it is migrated;
``resume``, ``report`` and ``verify`` never unpickle, they refuse an old directory and point here.

Each ``cells/<cell>/checkpoints/gen_XXXX.pkl`` becomes ``gen_XXXX.safetensors``
(:mod:`autophagy.store.statefile`, the same state, bit for bit); then every folder's files are
hashed
into its ``manifest.json`` (vouching for them, as the user just did) and the pickles are
deleted. Interrupted, it can be run again: a pickle is deleted only once its folder is sealed.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

from autophagy.atomic import atomic_write_bytes
from autophagy.errors import MigrationError  # noqa: F401
from autophagy.store import manifest, statefile

PAYLOAD = {"model", "rng", "policy_state", "reference", "rows"}
"""The keys of a loop checkpoint (:func:`autophagy.loop.run_cell`)."""


@dataclass
class Migration:
    checkpoints: int
    folders: int


def plan(root: Path) -> tuple[list[Path], list[Path]]:
    """What :func:`migrate_run` would do: (pickle checkpoints, folders to seal). A folder is
    sealed when it has no manifest or holds pickles; a current folder is never re-sealed, so a
    damaged file in it stays reported instead of being vouched for."""
    root = Path(root)
    old = manifest.old_checkpoints(root)
    cells = root / "cells"
    folders = [c for c in sorted(cells.iterdir()) if c.is_dir()] if cells.is_dir() else []
    with_pickles = {p.parent.parent for p in old}
    seal = [
        f
        for f in [*folders, root]
        if f in with_pickles or (not (f / manifest.NAME).exists() and any(f.iterdir()))
    ]
    return old, seal


def migrate_run(root: Path) -> Migration:
    """Convert ``root``'s pickle checkpoints and seal its old folders. Unpickles: trust ``root``."""
    old, folders = plan(root)
    for path in old:
        try:
            payload = pickle.loads(path.read_bytes())  # the user confirmed: see the docstring
            if not isinstance(payload, dict) or not PAYLOAD <= payload.keys():
                raise TypeError(f"not a checkpoint: a dict with keys {sorted(PAYLOAD)}")
            data = statefile.dumps(payload)
        except Exception as err:  # unpickling can raise anything
            raise MigrationError(f"{path}: cannot convert ({type(err).__name__}: {err})") from None
        target = path.with_name(path.stem + statefile.SUFFIX)
        atomic_write_bytes(target, data, durable=True)
    for folder in folders:
        manifest.seal(folder)
    for path in old:
        path.unlink()
    return Migration(len(old), len(folders))
