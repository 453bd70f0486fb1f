"""``autophagy check TARGET``: the contract checks of :mod:`autophagy.testing` on a plug-in (or
a built-in), from the command line, so a plug-in author learns in one line what breaks the loop."""

from __future__ import annotations

from typing import Annotated

import typer

from autophagy.cli import commands
from autophagy.cli.commands import app, fail
from autophagy.errors import AutophagyError


@app.command()
def check(
    target: Annotated[str, typer.Argument(
        help="A registered name (gmm, mixed:0.5, w2, moons) or your module:Class.")],
    option: Annotated[list[str] | None, typer.Option(
        "--option", help="key=value (YAML value) for the constructor, repeatable.")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="The dataset to check a model, policy or metric on (default: moons).")] = None,
) -> None:
    """Run the contract checks on a model, policy, metric or dataset: fit returns self, samples
    have the data's shape, the state round-trips bit for bit, the same rng gives the same
    numbers, ... Prints each rule passed; the first broken one is one line and exit 2."""
    import yaml

    from autophagy.testing import check as run_checks

    options = {}
    for item in option or []:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            fail(f"--option: {item!r} is not key=value")
        options[key.strip()] = yaml.safe_load(raw)
    try:
        lines = run_checks(target, options=options or None, dataset=dataset)
    except AutophagyError as err:
        fail(str(err))
    for line in lines:
        commands.console.print(line, markup=False, highlight=False, soft_wrap=True)
