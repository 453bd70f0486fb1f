"""A closed form beside its runs (:class:`~autophagy.analysis.agreement.Agreement`) as a table."""

from __future__ import annotations

from rich.table import Table

from autophagy.analysis.agreement import Agreement


def agreement_table(agreement: Agreement) -> Table:
    """Generation, then each quantity's theory and runs' mean with its 99% interval, then
    whether every quantity agrees."""
    table = Table(title=agreement.title, title_justify="left")
    table.add_column("generation", justify="right")
    for name in agreement.quantities:
        table.add_column(f"{name} theory" if len(agreement.quantities) > 1 else f"theory {name}",
                         justify="right")
        table.add_column("runs ± 99% CI", justify="right")
    table.add_column("agree", justify="right")
    for row in agreement.rows:
        cells = [str(row.generation)]
        for theory, mean, half in row.values:
            cells += [f"{theory:.4g}", f"{mean:.4g}±{half:.1g}"]
        table.add_row(*cells, "[green]yes[/green]" if row.agree else "[red]no[/red]")
    return table
