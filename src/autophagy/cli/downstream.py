"""``autophagy ensembles``: Deep Generative Ensembles over a finished run's seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autophagy.cli.commands import app, console, fail
from autophagy.errors import AutophagyError


@app.command()
def ensembles(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory (several seeds).")],
    csv: Annotated[Path | None, typer.Option(help="Also write the table to this CSV file.")] = None,
    every: Annotated[bool, typer.Option(help="Every generation (default: the first and the "
                                              "last).")] = False,
) -> None:
    """Deep Generative Ensembles (van Breugel et al. 2023): per label and generation, a
    classifier trained on one seed's samples against one trained on the K seeds' samples pooled
    and the K classifiers averaged, tested on held-out real data: accuracy and expected
    calibration error (ECE)."""
    from autophagy.analysis.ensembles import ENSEMBLE_COLUMNS, ensemble_table
    from autophagy.run.cells import build_dataset
    from autophagy.store import RunStore

    try:
        table = ensemble_table(RunStore.open(run_dir), build_dataset)
    except AutophagyError as err:
        fail(str(err))
    out = Table(title="Deep Generative Ensembles: one generator against K (held-out real data)")
    for column in ("label", "generation", "k", *ENSEMBLE_COLUMNS):
        out.add_column(column.replace("_", " "), justify="left" if column == "label" else "right")
    shown = table if every else table[table["generation"].isin(
        [table["generation"].min(), table["generation"].max()])]
    for row in shown.itertuples(index=False):
        out.add_row(str(row.label), str(row.generation), str(row.k),
                    *(f"{getattr(row, c):.3f}" for c in ENSEMBLE_COLUMNS))
    console.print(out)
    if csv is not None:
        table.to_csv(csv, index=False)
        console.print(f"table: {csv}")
