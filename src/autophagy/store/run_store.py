"""The run directory: everything a run produced, written so that an interruption loses nothing.

Layout::

    RUN/
      config.yaml                 the resolved config (what ``autophagy resume`` re-runs)
      metrics.parquet             one row per (cell, generation, metric), all cells
      cells/<cell>/cell.json      the cell's coordinates (policy, lambda, seed, ...) and status
      cells/<cell>/metrics.parquet
      cells/<cell>/checkpoints/gen_0003.safetensors   model, RNG and policy state (data only)
      cells/<cell>/manifest.json              sha256 and size of the cell's files (and RUN/'s)
      cells/<cell>/samples/gen_0003.npy       evaluation samples, to redraw figures
      cells/<cell>/error.txt                  traceback of a failed cell
      figures/*.png  report.html
      .lock                       the one writer's lock: pid, host, since (store.lock)

Every file is written to a temporary name in the same folder and renamed into place, so a file
is either the old version or the new one, never half of each. A cell's checkpoint is written
after its metrics, so the newest checkpoint always has its metrics on disk. Every write also
goes through :func:`autophagy.store.manifest.write`, which records the file in its folder's
manifest,
so ``resume``, ``report`` and :func:`open_run` refuse a damaged file instead of reading it
(:mod:`autophagy.store.manifest`); checkpoints hold no code (:mod:`autophagy.store.statefile`).
A write that fails (a full disk, a read-only folder) raises
:class:`~autophagy.errors.WriteError` naming the file, never a cell's ``failed`` status.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from autophagy.atomic import atomic_write_text
from autophagy.errors import (  # noqa: F401
    CheckpointError,
    InputError,
    StoreError,
    WriteError,
)
from autophagy.signatures import ArgumentError
from autophagy.store import manifest, statefile

if TYPE_CHECKING:
    from autophagy.config import Config

SAVED_IMAGES = 64
"""Image samples kept per generation (as .npy and a PNG grid)."""
CELL_COLUMNS = ["cell", "label", "policy", "lambda", "seed", "status", "message"]
"""Columns every cell has; each policy parameter (``fraction``, ...) and swept field
(``data.n_train``) adds one after ``lambda``."""
_CHECKPOINT = re.compile(rf"gen_(\d+){re.escape(statefile.SUFFIX)}")
_log = logging.getLogger(__name__)


TOKENIZER = "tokenizer.json"


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    manifest.write(path, buf.getvalue())


def write_npy(path: Path, array: np.ndarray, *, durable: bool = False) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    manifest.write(path, buf.getvalue(), durable=durable)


_CELL_FIELDS: dict[str, tuple[type, ...]] = {
    "cell": (str,), "label": (str,), "policy": (str,), "lambda": (int, float, type(None)),
    "params": (dict,), "sweep": (dict,), "seed": (int,), "status": (str,), "message": (str,),
    "generation": (int, type(None)),
}
"""The fields of ``cell.json`` and the JSON types each may have (others are kept as they are)."""


def check_cell_record(path: Path, info: Any, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``info`` if it is a cell record (a JSON object whose known fields have their types, with
    the ``required`` ones: a run's cells carry their coordinates, a lone cell may not)."""
    if not isinstance(info, dict):
        raise StoreError(f"{path}: not a cell record (a JSON object), got {type(info).__name__}")
    if missing := [k for k in required if k not in info]:
        raise StoreError(f"{path}: not a cell record (no {', '.join(missing)})")
    for key, types in _CELL_FIELDS.items():
        value = info.get(key)
        if key in info and (not isinstance(value, types) or isinstance(value, bool)):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise StoreError(f"{path}: field {key!r} is {value!r:.40}, expected {wanted}")
    return info


class CellStore:
    """One cell's folder: checkpoints per generation, its metrics, samples and status."""

    def __init__(self, root: Path, keep: str = "all"):
        self.root = Path(root)
        self.keep = keep

    # -- coordinates and status -------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The cell's coordinates and status (``cell.json``); ``{}`` before it is written.

        Raises:
            StoreError: ``cell.json`` is not a cell record (not JSON, or a field of another
                type): a received directory's file, named in one line.
        """
        path = self.root / "cell.json"
        if not path.exists():
            return {}
        try:
            info = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as err:
            raise StoreError(f"{path}: not JSON ({err})") from None
        return check_cell_record(path, _numbers_back(info) if isinstance(info, dict) else info)

    def write_info(self, **fields: Any) -> None:
        info = {**self.info(), **fields}
        text = json.dumps(_strict(info), indent=2, allow_nan=False)
        manifest.write(self.root / "cell.json", text.encode())

    def set_status(self, status: str, message: str = "", generation: int | None = None) -> None:
        self.write_info(status=status, message=message, generation=generation)

    # -- checkpoints --------------------------------------------------------------------------
    def _checkpoint(self, generation: int) -> Path:
        return self.root / "checkpoints" / f"gen_{generation:04d}{statefile.SUFFIX}"

    def _checkpoints_on_disk(self) -> dict[int, Path]:
        folder = self.root / "checkpoints"
        if not folder.exists():
            return {}
        if old := sorted(folder.glob("gen_*.pkl")):
            raise manifest.OldFormatError(
                f"{old[-1]}: an old pickle checkpoint; this version reads only data files: "
                "convert the run with 'autophagy migrate RUN_DIR' (it unpickles them: only for "
                "a directory you trust)"
            )
        found = (_CHECKPOINT.fullmatch(p.name) for p in folder.iterdir())
        return {int(m[1]): folder / m[0] for m in found if m}

    def generations_saved(self) -> list[int]:
        """Generations whose checkpoint is on disk and in the manifest (not yet re-hashed)."""
        files = manifest.Manifest(self.root).entries()
        on_disk = self._checkpoints_on_disk()
        return sorted(g for g, p in on_disk.items() if p.relative_to(self.root).as_posix() in files)

    def save(self, generation: int, payload: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """Persist generation ``generation``: metrics first, then the checkpoint; both, and their
        manifest, fsynced before each rename and their folders after (:func:`manifest.update`)."""
        table = io.BytesIO()
        rows_frame(rows).to_parquet(table, index=False)
        older = []
        if self.keep == "last":
            older = [p for g, p in self._checkpoints_on_disk().items() if g < generation]
        manifest.update(
            [
                (self.root / "metrics.parquet", table.getvalue(), False),
                (self._checkpoint(generation), statefile.dumps(payload), True),
            ],
            remove=older,
        )

    def load(self, generation: int) -> dict[str, Any]:
        """Checkpoint ``generation``, checked against the manifest before it is decoded.

        Raises:
            CheckpointError: missing, truncated, corrupted, not in the manifest, or unreadable.
        """
        path = self._checkpoint(generation)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"{path}: missing") from None
        if reason := manifest.check_bytes(path, data):
            raise CheckpointError(f"{path}: {reason}")
        try:
            return statefile.loads(data)
        except statefile.StateFileError as err:
            raise CheckpointError(f"{path}: {err}") from None

    def latest(self) -> tuple[int, dict[str, Any]] | None:
        """The newest good checkpoint, or ``None`` if the cell has none (not finished generation
        0, or every checkpoint damaged). A damaged newer checkpoint is skipped with a warning
        (logger ``autophagy.store``): the cell recomputes from the one before, to the same
        numbers, since the training RNG state travels in the checkpoint."""
        bad: list[str] = []
        for g in sorted(self._checkpoints_on_disk(), reverse=True):
            try:
                payload = self.load(g)
            except CheckpointError as err:
                bad.append(str(err))
                continue
            then = f"cell {self.root.name} goes back to generation {g} and recomputes from {g + 1}"
            for line in bad:
                _log.warning("warning: %s; %s", line, then)
            return g, payload
        for line in bad:
            _log.warning("warning: %s; no good checkpoint left: cell %s restarts from generation "
                         "0", line, self.root.name)
        return None

    # -- samples and metrics ----------------------------------------------------------------
    def save_samples(self, generation: int, samples: np.ndarray) -> None:
        """Points: every evaluation sample. Images: the first :data:`SAVED_IMAGES` (a
        generation's 1,000 CIFAR-size samples would weigh 12 MB; the report draws their grid)."""
        path = self.root / "samples" / f"gen_{generation:04d}.npy"
        # durable, as the checkpoint that follows: a finished generation keeps its samples
        write_npy(path, samples[:SAVED_IMAGES] if samples.ndim == 4 else samples, durable=True)

    def save_error(self, text: str) -> None:
        """The traceback of a failed cell (``error.txt``), for the one who debugs it."""
        try:
            atomic_write_text(self.root / "error.txt", text)
        except OSError as err:
            raise WriteError.of(err, self.root / "error.txt") from err

    def samples(self) -> dict[int, np.ndarray]:
        folder = self.root / "samples"
        if not folder.exists():
            return {}
        return {int(p.stem.split("_")[1]): np.load(p) for p in sorted(folder.glob("gen_*.npy"))}

    def metrics(self) -> pd.DataFrame:
        path = self.root / "metrics.parquet"
        return pd.read_parquet(path) if path.exists() else rows_frame([])

    def save_theory(self, df: pd.DataFrame) -> None:
        """Expected curves (generation, metric, value) for this cell, from closed forms."""
        write_parquet(self.root / "theory.parquet", df)

    def theory(self) -> pd.DataFrame | None:
        path = self.root / "theory.parquet"
        return pd.read_parquet(path) if path.exists() else None


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A cell's metric rows as the long table (generation, metric, value)."""
    df = pd.DataFrame(rows, columns=["generation", "metric", "value"])
    return df.astype({"generation": "int64", "metric": "string", "value": "float64"})


class RunStore:
    """A run directory: config, cells, the merged metrics table and the report."""

    def __init__(self, root: Path, keep: str = "all"):
        self.root = Path(root)
        self.keep = keep

    @classmethod
    def create(cls, root: Path, config_text: str, keep: str = "all") -> RunStore:
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise ArgumentError("root", f"{str(root)!r} is a file; give a folder for the run")
        if root.exists() and any(root.iterdir()):
            raise ArgumentError(
                "root",
                f"{str(root)!r} already exists and is not empty; choose another folder "
                f"or continue it with 'autophagy resume {root}'"
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise WriteError.of(err, root) from err
        manifest.write(root / "config.yaml", config_text.encode())
        return cls(root, keep)

    @classmethod
    def open(cls, root: Path) -> RunStore:
        root = Path(root)
        if not (root / "config.yaml").exists():
            raise InputError(f"run directory {str(root)!r} has no config.yaml; is it a run?")
        manifest.check_run(root)  # one line naming a damaged file, or the old pickle format
        store = cls(root)
        for cid in store.cell_ids():  # cell records of the right types, before anything reads them
            path = store.cell(cid).root / "cell.json"
            if path.exists():
                check_cell_record(path, store.cell(cid).info(), ("cell", "label", "policy", "seed"))
        return store

    @property
    def config_text(self) -> str:
        return (self.root / "config.yaml").read_text()

    def config(self) -> Config:
        """The run's validated config (the one reader of ``config.yaml``)."""
        import yaml

        from autophagy.config import validate

        try:
            data = yaml.safe_load(self.config_text)
        except yaml.YAMLError as err:
            where = str(self.root / "config.yaml")
            raise InputError(f"{where!r} is not valid YAML: {err}") from None
        return validate(data if isinstance(data, dict) else {})

    def cell(self, cell_id: str) -> CellStore:
        return CellStore(self.root / "cells" / cell_id, keep=self.keep)

    def cell_ids(self) -> list[str]:
        folder = self.root / "cells"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []

    def _coordinates(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Each cell's coordinates (policy parameters flattened into columns) and the columns."""
        infos, params = [], {}
        for cid in self.cell_ids():
            info = self.cell(cid).info()
            coordinates = {**(info.get("params") or {}), **(info.get("sweep") or {})}
            flat = {**info, **{k: v for k, v in coordinates.items() if k not in CELL_COLUMNS}}
            params.update(dict.fromkeys(coordinates))
            infos.append(flat | {"cell": cid})
        extra = [k for k in params if k not in CELL_COLUMNS]
        at = CELL_COLUMNS.index("lambda") + 1
        return infos, [*CELL_COLUMNS[:at], *extra, *CELL_COLUMNS[at:]]

    def cells(self) -> pd.DataFrame:
        """One row per cell: its coordinates (with every policy parameter), status, message.

        An unfinished cell (``pending``, ``running``) whose run has no live writer reads as
        ``interrupted`` (:mod:`autophagy.store.runstate`): its curve stops early."""
        from autophagy.store import lock

        infos, columns = self._coordinates()
        df = pd.DataFrame([{c: info.get(c) for c in columns} for info in infos], columns=columns)
        alive = lock.runner(self.root) is not None
        df["status"] = [INTERRUPTED if s in UNFINISHED and not alive else s for s in df["status"]]
        return df.astype({"lambda": "float64"})

    def collect_metrics(self) -> pd.DataFrame:
        """Merge every cell's metrics with its coordinates and write ``metrics.parquet``."""
        merged = self.results()
        write_parquet(self.root / "metrics.parquet", merged)
        return merged

    def results(self) -> pd.DataFrame:
        """Every cell's metrics with its coordinates, read from the cells (writes nothing): one
        row per (cell, generation, metric), every policy parameter and the seed as columns."""
        infos, columns = self._coordinates()
        keys = [c for c in columns if c not in ("status", "message")]
        frames = []
        for info in infos:
            df = self.cell(info["cell"]).metrics()
            for key in reversed(keys):
                df.insert(0, key, info.get(key))
            frames.append(df)
        columns = [*keys, "generation", "metric", "value"]
        merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        return merged[columns].astype({"lambda": "float64", "value": "float64"})

    def metrics(self) -> pd.DataFrame:
        path = self.root / "metrics.parquet"
        return pd.read_parquet(path) if path.exists() else self.collect_metrics()

    def save_real(self, points: np.ndarray) -> None:
        """Held-out real points drawn behind the sample scatter plots."""
        write_npy(self.root / "real.npy", np.asarray(points, dtype=np.float32))

    def save_tokenizer(self, text: str) -> None:
        """A text run's tokenizer (HF ``tokenizers`` JSON): what its token ids mean."""
        manifest.write(self.root / TOKENIZER, text.encode())

    def tokenizer(self) -> str | None:
        path = self.root / TOKENIZER
        return path.read_text() if path.exists() else None

    def real_points(self) -> np.ndarray | None:
        path = self.root / "real.npy"
        return np.load(path) if path.exists() else None

    def theory(self) -> pd.DataFrame | None:
        """Expected curves per label: each cell's closed form, averaged over its seeds."""
        frames = []
        for cid in self.cell_ids():
            df = self.cell(cid).theory()
            if df is not None:
                frames.append(df.assign(label=self.cell(cid).info().get("label", cid)))
        if not frames:
            return None
        merged = pd.concat(frames, ignore_index=True)
        return merged.groupby(["label", "generation", "metric"], as_index=False)["value"].mean()

    def samples(self) -> dict[str, dict[int, np.ndarray]]:
        return {cid: s for cid in self.cell_ids() if (s := self.cell(cid).samples())}

    def __iter__(self) -> Iterator[CellStore]:
        return (self.cell(c) for c in self.cell_ids())


UNFINISHED = frozenset({"pending", "running"})
"""What a writer leaves in ``cell.json`` while a cell is under way (or if it stopped)."""
INTERRUPTED = "interrupted"
"""What readers show for an unfinished cell whose writer is gone."""
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _strict(value: Any) -> Any:
    """``value`` as strict JSON: numpy scalars as Python ones, non-finite floats as the strings
    ``"inf"``, ``"-inf"``, ``"nan"``. Why: ``json.dumps`` writes ``Infinity`` (fully synthetic's
    lambda), which only Python's parser accepts; jq, JavaScript and Go reject the file."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _numbers_back(info: dict[str, Any]) -> dict[str, Any]:
    """Undo :func:`_strict` where numbers live (``lambda``, policy parameters, swept values),
    so a label-like string elsewhere is never taken for a number. Files from before, with a
    bare ``Infinity``, read as they always did (Python's parser takes it)."""

    def back(v: Any) -> Any:
        if isinstance(v, list):
            return [back(x) for x in v]
        return _NON_FINITE.get(v, v) if isinstance(v, str) else v

    out = dict(info)
    if "lambda" in out:
        out["lambda"] = back(out["lambda"])
    for key in ("params", "sweep"):
        if isinstance(out.get(key), dict):
            out[key] = {k: back(v) for k, v in out[key].items()}
    return out


def open_run(run_dir: str | Path) -> RunStore:
    """A finished or running run directory: ``.config()``, ``.cells()``, ``.results()``,
    ``.samples()``, ``.theory()``, and each cell's store (``.cell(cell_id)``)."""
    return RunStore.open(Path(run_dir))


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """The metrics of a run as one long table: a row per (cell, generation, metric), with the
    cell's policy, every policy parameter (``lambda``, ``fraction``, ...) and seed as columns.

    Example:
        >>> df = load_results("runs/toy-flow-20261202-101500")
        >>> df[df.metric == "w2"].groupby(["label", "generation"]).value.mean()
    """
    return open_run(run_dir).results()
