"""Rich progress bars for a running experiment: cells overall, then one bar per running cell
(its generations) with the current fitting step when the model reports steps."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)


class ExperimentProgress:
    """Turns loop events (dicts with ``cell`` and ``generation``/``step``/``done``) into bars."""

    def __init__(self, n_cells: int, generations: int, console: Console | None = None,
                 enabled: bool = True):
        self.generations = generations
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.overall = self.progress.add_task("cells", total=n_cells, note="")
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> ExperimentProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def _task(self, cell: str):
        if cell not in self.tasks:
            self.tasks[cell] = self.progress.add_task(
                f"  {cell}", total=self.generations + 1, note=""
            )
        return self.tasks[cell]

    def __call__(self, event: dict[str, Any]) -> None:
        cell = event.get("cell", "?")
        if "done" in event:
            if cell in self.tasks:
                self.progress.remove_task(self.tasks.pop(cell))
            self.progress.advance(self.overall)
            status = event["done"]
            if status != "done":
                msg = event.get("message", "")
                self.progress.console.print(f"[red]{cell}: {status}[/red] {msg}")
            return
        task = self._task(cell)
        if "generation" in event:
            self.progress.update(task, completed=event["generation"], note="")
        if "step" in event and "steps" in event:
            self.progress.update(task, note=f"step {event['step']}/{event['steps']}")
