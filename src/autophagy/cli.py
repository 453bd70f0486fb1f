"""The ``autophagy`` command line: run, resume, report, list, theory."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Self-consuming generative models: retrain a model on its own samples, generation after "
    "generation, mixed with real data, and measure what happens against theory.",
)
theory_app = typer.Typer(no_args_is_help=True, help="Closed forms of the theory, checked by simulation.")
app.add_typer(theory_app, name="theory")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """One clear line on stderr and a non-zero exit, never a traceback."""
    err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    preset: Annotated[str | None, typer.Option("--preset", "-p",
                      help="A built-in preset ('autophagy list' shows them).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s",
                    help="Override a field: key.sub=value (YAML value), repeatable, "
                    "e.g. --set loop.lambda=[0,0.5] --set loop.generations=10.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o",
                   help="Run directory (default: runs/<name>-<time>).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run an experiment; with no options, the default job (preset 'default')."""
    from autophagy.config import load_config
    from autophagy.experiment import check_config, expand_grid
    from autophagy.store import RunStore

    try:
        if config is None and preset is None:
            preset = "default"
        cfg = load_config(config, preset=preset, overrides=set_ or [])
        check_config(cfg)
        root = out or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        store = RunStore.create(root, cfg.to_yaml(), keep=cfg.run.checkpoints)
    except ValueError as err:
        fail(str(err))
    n = len(expand_grid(cfg))
    console.print(
        f"[bold]autophagy[/bold] {cfg.name}: {cfg.data.name} x {cfg.model.name}, {n} cells, "
        f"{cfg.loop.generations} generations -> {store.root}"
    )
    _execute(cfg, store, quiet)


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="A run directory to continue.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Continue an interrupted run: finished generations are kept, each cell goes on from its
    last checkpoint with the same random numbers it would have drawn."""
    import yaml

    from autophagy.config import validate
    from autophagy.store import RunStore

    try:
        store = RunStore.open(run_dir)
        cfg = validate(yaml.safe_load(store.config_text))
        store.keep = cfg.run.checkpoints
    except ValueError as err:
        fail(str(err))
    console.print(f"[bold]autophagy[/bold] resuming {store.root}")
    _execute(cfg, store, quiet)


def _execute(cfg, store, quiet: bool) -> None:
    from autophagy.experiment import expand_grid, run_experiment
    from autophagy.progress import ExperimentProgress
    from autophagy.report.build import build_report

    cells = expand_grid(cfg)
    try:
        with ExperimentProgress(len(cells), cfg.loop.generations, console,
                                enabled=not quiet) as progress:
            statuses = run_experiment(cfg, store, progress)
    except KeyboardInterrupt:
        err_console.print(f"interrupted; finished generations are saved. Continue with:\n"
                          f"  autophagy resume {store.root}")
        raise typer.Exit(130) from None
    html = build_report(store, console=console)
    console.print(f"report: {html}")
    if all(s != "done" for s in statuses.values()):
        raise typer.Exit(1)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
) -> None:
    """Rebuild the figures, tables and report.html of a run from its directory (no retraining)."""
    from autophagy.report.build import build_report
    from autophagy.store import RunStore

    try:
        store = RunStore.open(run_dir)
    except ValueError as err:
        fail(str(err))
    console.print(f"report: {build_report(store, console=console)}")


@app.command("list")
def list_() -> None:
    """Show datasets, models, policies, metrics and presets."""
    from autophagy.config import preset_dir, preset_names, load_yaml
    from autophagy.data import describe_datasets
    from autophagy.metrics import METRICS
    from autophagy.models.registry import MODELS
    from autophagy.policies import POLICIES

    sections = [
        ("datasets (data.name)", describe_datasets()),
        ("models (model.name)", [(k, v.description) for k, v in MODELS.items()]),
        ("policies (loop.policy)", [(k, v[1]) for k, v in POLICIES.items()]),
        ("metrics (eval.metrics)", [(k, m.description) for k, m in METRICS.items()]),
        ("presets (--preset)", [
            (p, load_yaml(preset_dir() / f"{p}.yaml").get("description", ""))
            for p in preset_names()
        ]),
    ]
    for title, rows in sections:
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        table.add_column(style="bold cyan")
        table.add_column()
        for name, desc in rows:
            table.add_row(name, desc)
        console.print(table)
        console.print()


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
