"""The ``autophagy`` command line: run, resume, report, list, theory."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from autophagy.errors import AutophagyError, ClusterError

# Markdown help: a docstring's paragraphs are paragraphs, its source line breaks are not shown
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="Self-consuming generative models: retrain a model on its own samples, generation after "
    "generation, mixed with real data, and measure what happens against theory.",
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _consoles() -> None:
    """Decided per command, when stdout is known: wrapped at a terminal, not in a log."""
    from autophagy.cli import terminal

    global console, err_console
    console, err_console = terminal.make_console(), terminal.make_console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """One clear line on stderr and a non-zero exit, never a traceback."""
    from rich.markup import escape  # a message may hold brackets: pip install -e ".[ray]"

    from autophagy.cli.terminal import one_line

    err_console.print(f"[bold red]error:[/bold red] {escape(one_line(message))}",
                      highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", "-p", help="A built-in preset ('autophagy list' shows them)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="Override a field: key.sub=value (YAML value), repeatable, "
            "e.g. --set loop.policies.mixed.lambda=[0,0.5] --set loop.generations=10.",
        ),
    ] = None,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            help="Sweep any other field over a list of values: key.sub=[v1,v2], repeatable, "
            "e.g. --sweep data.n_train=[100,250,1000] (one set of cells per value).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run directory (default: `runs/<name>-<time>`)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run an experiment; with no options, the default job (preset 'toy-flow')."""
    from autophagy.config import DEFAULT_PRESET, config_field, load_config
    from autophagy.run.checks import check_config
    from autophagy.run.grid import expand_grid
    from autophagy.store import RunStore
    from autophagy.store.lock import RunLock

    try:
        if config is None and preset is None:
            preset = DEFAULT_PRESET
        cfg = load_config(config, preset=preset, overrides=set_ or [], sweeps=sweep or [])
        check_config(cfg)
        root = out or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        with config_field("--out"):
            store = RunStore.create(root, cfg.to_yaml(), keep=cfg.run.checkpoints)
        lock = RunLock(store.root, "run").acquire()
    except AutophagyError as err:
        fail(str(err))
    n = len(expand_grid(cfg))
    console.print(
        f"[bold]autophagy[/bold] {cfg.name}: {cfg.data.name} x {cfg.model.name}, {n} cells, "
        f"{cfg.loop.generations} generations -> {store.root}"
    )
    _execute(cfg, store, quiet, lock)


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="A run directory to continue.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Continue an interrupted run: finished generations are kept, each cell goes on from its
    last checkpoint with the same random numbers it would have drawn."""
    from autophagy.run.checks import check_config
    from autophagy.store import RunStore
    from autophagy.store.lock import RunLock

    lock = None
    try:
        if (run_dir / "config.yaml").exists():  # the one writer, before anything is read
            lock = RunLock(run_dir, "resume").acquire()
        store = RunStore.open(run_dir)
        cfg = store.config()
        store.keep = cfg.run.checkpoints
        check_config(cfg)  # as for run: a received directory's checkpoint, data and tracker
    except AutophagyError as err:
        if lock is not None:
            lock.release()
        fail(str(err))
    if lock.stale is not None:
        console.print(f"the previous writer, {lock.stale.describe()}, is gone", markup=False,
                      highlight=False, soft_wrap=True)
    console.print(f"[bold]autophagy[/bold] resuming {store.root}")
    _execute(cfg, store, quiet, lock)


def _execute(cfg, store, quiet: bool, lock) -> None:
    """Run the cells and the report while holding ``lock``; a stop (Ctrl-C, SIGTERM, a failed
    write) is one line, with the resume hint when a generation finished."""
    from autophagy.cli.progress import ExperimentProgress
    from autophagy.report.build import build_report
    from autophagy.run.experiment import run_experiment
    from autophagy.run.grid import expand_grid
    from autophagy.store.runstate import resume_hint, sigterm_as_interrupt, stopped_by

    cells = expand_grid(cfg)
    try:
        with sigterm_as_interrupt():
            with ExperimentProgress(
                len(cells), cfg.loop.generations, console, enabled=not quiet
            ) as progress:
                statuses = run_experiment(cfg, store, progress)
            html = build_report(store, console=console)
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (runstate.Terminated)
        err_console.print(f"interrupted; {resume_hint(store.root)}", markup=False,
                          highlight=False, soft_wrap=True)
        raise typer.Exit(getattr(err, "exit_code", 130)) from None
    except ClusterError as err:  # before OSError: Ray's ConnectionError is one
        fail(str(err))
    except OSError as err:  # a WriteError (disk full, not writable) or else, as it is; no report
        fail(stopped_by(err, store.root))
    finally:
        lock.release()
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
    from autophagy.store.lock import hold_unless_running

    try:
        store = RunStore.open(run_dir)
        with hold_unless_running(run_dir, "report"):  # a live run: a snapshot, no manifest
            html = build_report(store, console=console)
    except AutophagyError as err:
        fail(str(err))
    console.print(f"report: {html}")


@app.command()
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the comparison.")],
    metric: Annotated[
        str | None, typer.Option(help="Verdict metric (default: the first run's).")
    ] = None,
) -> None:
    """One report across runs: every run's curves in the same figures, labels prefixed by the
    run's name, and one verdict table (the runs are only read)."""
    from autophagy.report.compare import compare_runs

    try:
        page = compare_runs(run_dirs, out, verdict_metric=metric, console=console)
    except AutophagyError as err:
        fail(str(err))
    console.print(f"report: {page}")


@app.command("list")
def list_() -> None:
    """Show datasets, models, policies, metrics and presets."""
    from autophagy.config import load_yaml, preset_dir, preset_names
    from autophagy.data import describe_datasets
    from autophagy.metrics import METRICS
    from autophagy.models.registry import MODELS
    from autophagy.policies import POLICIES

    sections = [
        ("datasets (data.name)", describe_datasets()),
        ("models (model.name)", MODELS.describe()),
        ("policies (loop.policies)", _policy_rows(POLICIES)),
        ("metrics (eval.metrics)", METRICS.describe()),
        (
            "presets (--preset)",
            [
                (p, load_yaml(preset_dir() / f"{p}.yaml").get("description", ""))
                for p in preset_names()
            ],
        ),
    ]
    for title, rows in sections:
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        table.add_column(style="bold cyan")
        table.add_column()
        for name, desc in rows:
            table.add_row(name, desc)
        console.print(table)
        console.print()


def _policy_rows(policies) -> list[tuple[str, str]]:
    rows = []
    for name, description in policies.describe():
        params = ", ".join(
            f"{p.key}={p.default:g}" if isinstance(p.default, int | float) else p.key
            for p in policies[name].parameters()
        )
        rows.append((name, description + (f"; parameters: {params}" if params else "")))
    return rows


@app.command()
def verify(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, e.g. one you received.")],
) -> None:
    """Check every file of a run directory against its manifests (sha256 and size) without
    running or unpickling anything: one line per problem and a summary; exit 1 on a problem."""
    from autophagy.store.manifest import NAME, verify_run

    if not (run_dir / "config.yaml").exists() and not (run_dir / NAME).exists():
        fail(f"{str(run_dir)!r} has no config.yaml or {NAME}; is it a run directory?")
    result = verify_run(run_dir)
    from autophagy.cli.terminal import one_line

    for problem in result.problems:
        console.print(one_line(problem.line(run_dir)), markup=False, highlight=False,
                      soft_wrap=True)
    size = f"{result.bytes / 1e6:.1f} MB" if result.bytes >= 1e5 else f"{result.bytes / 1e3:.0f} kB"
    cells = f"{result.cells} cell{'s' * (result.cells != 1)}"
    checked = f"{result.files} files ({size}) in {cells} match their manifests"
    if result.problems:
        n = len(result.problems)
        console.print(f"{run_dir}: {n} problem{'s' * (n > 1)}; {checked}", markup=False,
                      highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"{run_dir}: clean, {checked}", markup=False, highlight=False, soft_wrap=True)
    from autophagy.store.runstate import run_state

    if line := run_state(run_dir).line():  # intact files, but the run did not finish
        console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command()
def migrate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory of an older autophagy.")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask: you trust where DIR came from.")
    ] = False,
) -> None:
    """Convert an old run directory's pickle checkpoints (gen_*.pkl) to data-only safetensors
    ones and write its manifests, so resume and report accept it. It unpickles them, which can
    run code: only for a directory you trust."""
    import os

    from autophagy.store.manifest import verify_run
    from autophagy.store.migrate import migrate_run, plan

    if not (run_dir / "config.yaml").exists():
        fail(f"run directory {str(run_dir)!r} has no config.yaml; is it a run?")
    old, folders = plan(run_dir)
    if not folders:
        console.print(f"{run_dir}: nothing to migrate (already in the current format; "
                      f"'autophagy verify {run_dir}' checks it)", markup=False, highlight=False,
                      soft_wrap=True)
        return
    if old:
        err_console.print(
            f"autophagy migrate will unpickle {len(old)} checkpoint files in {run_dir}. "
            "Unpickling runs whatever code a file names: continue only if you trust where this "
            "directory came from.",
            markup=False, highlight=False, soft_wrap=True,
        )
        if not yes:
            stdin = sys.stdin
            if stdin is None or not stdin.isatty() or os.environ.get("CI"):
                fail("not confirmed: no terminal to ask on; pass --yes if you trust the directory")
            if not typer.confirm("Unpickle and convert them?", default=False):
                fail("nothing changed", code=1)
    from autophagy.store.lock import hold

    try:
        with hold(run_dir, "migrate"):  # it rewrites checkpoints and manifests: the one writer
            done = migrate_run(run_dir)
    except AutophagyError as err:
        fail(str(err))
    problems = verify_run(run_dir).problems
    console.print(
        f"{run_dir}: converted {done.checkpoints} checkpoints, sealed {done.folders} folders; "
        + ("verifies clean" if not problems else f"{len(problems)} problems: autophagy verify"),
        markup=False, highlight=False, soft_wrap=True,
    )


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
