"""Durability against a power cut: the order of ``fsync``, ``os.replace`` and ``os.unlink``.

A kill -9 only needs atomic renames (tests/test_store_faults.py); a power cut also needs each
step on disk before the next: the temporary file fsynced before its rename, the folder fsynced
after it (the rename lives there), and the same for the manifests that vouch for checkpoints,
so that a finished generation is never on disk without the manifest entry that makes it count.
The calls are recorded by wrapping the real ``os`` functions; the files are really written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from autophagy.store import CellStore, manifest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="names an fsynced descriptor through /proc/self/fd")


@pytest.fixture()
def calls(monkeypatch):
    """Every fsync (by the path of its descriptor), replace and unlink, in order."""
    events: list[tuple[str, ...]] = []
    fsync, replace, unlink = os.fsync, os.replace, os.unlink

    def record_fsync(fd):
        events.append(("fsync", os.path.realpath(os.readlink(f"/proc/self/fd/{fd}"))))
        fsync(fd)

    def record_replace(src, dst, *args, **kwargs):
        events.append(("replace", os.path.realpath(src), os.path.realpath(dst)))
        replace(src, dst, *args, **kwargs)

    def record_unlink(path, *args, **kwargs):
        events.append(("unlink", os.path.realpath(path)))
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", record_fsync)
    monkeypatch.setattr(os, "replace", record_replace)
    monkeypatch.setattr(os, "unlink", record_unlink)
    return events


def _check_order(events: list[tuple[str, ...]]) -> None:
    """Each rename: its file fsynced just before, its folder just after; each deletion: its
    folder fsynced before the next rename."""
    for i, event in enumerate(events):
        if event[0] == "replace":
            _, src, dst = event
            assert events[i - 1] == ("fsync", src), (event, events[i - 1])
            assert events[i + 1] == ("fsync", os.path.dirname(dst)), (event, events[i + 1:])
        if event[0] == "unlink" and not os.path.basename(event[1]).startswith("."):
            nxt = next(e for e in events[i + 1:] if e[0] != "unlink")
            assert nxt == ("fsync", os.path.dirname(event[1])), (event, nxt)


def test_a_generation_is_fsynced_file_then_rename_then_folder_manifests_included(
    tmp_path, calls
):
    cell = CellStore(tmp_path / "cells" / "c", keep="last")
    rows = [{"generation": 0, "metric": "w2", "value": 1.0}]
    cell.save(0, {"x": np.zeros(3)}, rows)
    cell.save_samples(1, np.zeros((5, 2), np.float32))
    calls.clear()
    cell.save(1, {"x": np.ones(3)}, [*rows, {"generation": 1, "metric": "w2", "value": 0.5}])
    _check_order(calls)
    root = os.path.realpath(cell.root)
    renamed = [os.path.relpath(e[2], root) for e in calls if e[0] == "replace"]
    # pending manifest, the metrics, the checkpoint, then the manifest that confirms them
    assert renamed == ["manifest.json", "metrics.parquet", "checkpoints/gen_0001.safetensors",
                       "manifest.json"]
    unlinked = [os.path.relpath(e[1], root) for e in calls if e[0] == "unlink"]
    assert unlinked == ["checkpoints/gen_0000.safetensors"]  # keep: last
    i_unlink = calls.index(("unlink", os.path.join(root, unlinked[0])))
    i_confirm = max(i for i, e in enumerate(calls) if e[0] == "replace")
    assert i_unlink < i_confirm  # the manifest forgets the file only once it is gone for good
    assert manifest.check_bytes(cell.root / renamed[2], (cell.root / renamed[2]).read_bytes()) \
        is None


def test_samples_of_a_finished_generation_are_durable_too(tmp_path, calls):
    cell = CellStore(tmp_path / "c")
    cell.save_samples(0, np.zeros((5, 2), np.float32))
    _check_order(calls)
    assert [Path(e[2]).name for e in calls if e[0] == "replace"] == [
        "manifest.json", "gen_0000.npy", "manifest.json"]


def test_writes_that_need_not_survive_a_power_cut_are_not_fsynced(tmp_path, calls):
    """A status or a report is rewritten by the next step; fsyncing it would only cost time."""
    cell = CellStore(tmp_path / "c")
    cell.set_status("running", generation=0)
    assert [e for e in calls if e[0] == "fsync"] == []
    assert [Path(e[2]).name for e in calls if e[0] == "replace"] == [
        "manifest.json", "cell.json", "manifest.json"]
