"""autophagy: self-consuming generative models, retrained on their own samples, measured.

Public entry points (imported lazily so the command line starts fast):

- :func:`run_loop` runs one cell (model x dataset x policy) in memory and returns its metrics;
- :func:`load_results` reads a run directory's metrics as one table, :func:`open_run` the rest
  (config, cells, samples, theory curves);
- :mod:`autophagy.models` (the :class:`~autophagy.models.GenerativeModel` protocol and families),
  :mod:`autophagy.policies`, :mod:`autophagy.data`, :mod:`autophagy.metrics`,
  :mod:`autophagy.theory`;
- :mod:`autophagy.testing`, the contract checks a plug-in author runs on their own pieces.

The packages follow the data flow (config -> run -> loop -> store -> analysis -> report), each
importing only the layers below it; docs/architecture.md draws the house.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "run_loop",
    "run_cell",
    "LoopSettings",
    "EvalSettings",
    "load_results",
    "open_run",
    "load_dataset",
    "parse_policy",
    "__version__",
]

_LAZY = {
    "run_loop": "autophagy.loop",
    "run_cell": "autophagy.loop",
    "LoopSettings": "autophagy.loop",
    "EvalSettings": "autophagy.loop",
    "load_results": "autophagy.store",
    "open_run": "autophagy.store",
    "load_dataset": "autophagy.data",
    "parse_policy": "autophagy.policies",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autophagy' has no attribute {name!r}")
