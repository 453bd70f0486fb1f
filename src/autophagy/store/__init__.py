"""The run directory: run and cell stores, manifests, state files, atomic writes, migration.

One folder per cell, every file through the atomic writer and listed with its sha256 in a
manifest: that is what makes a resumed run trustworthy and a received one checkable.
"""

from autophagy.store.run_store import CellStore, RunStore, load_results, open_run, rows_frame

__all__ = ["CellStore", "RunStore", "load_results", "open_run", "rows_frame"]
