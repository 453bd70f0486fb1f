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
theory_app = typer.Typer(
    no_args_is_help=True, help="Closed forms of the theory, checked by simulation."
)
app.add_typer(theory_app, name="theory")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """One clear line on stderr and a non-zero exit, never a traceback."""
    from rich.markup import escape  # a message may hold brackets: pip install -e ".[ray]"

    err_console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False,
                      soft_wrap=True)
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
        typer.Option("--out", "-o", help="Run directory (default: runs/<name>-<time>)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run an experiment; with no options, the default job (preset 'toy-flow')."""
    from autophagy.config import DEFAULT_PRESET, config_field, load_config
    from autophagy.errors import AutophagyError
    from autophagy.experiment import check_config, expand_grid
    from autophagy.lock import RunLock
    from autophagy.store import RunStore

    try:
        if config is None and preset is None:
            preset = DEFAULT_PRESET
        cfg = load_config(config, preset=preset, overrides=set_ or [], sweeps=sweep or [])
        check_config(cfg)
        root = out or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        with config_field("--out"):
            store = RunStore.create(root, cfg.to_yaml(), keep=cfg.run.checkpoints)
        lock = RunLock(store.root, "run").acquire()
    except (ValueError, AutophagyError) as err:
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
    from autophagy.errors import AutophagyError
    from autophagy.lock import RunLock
    from autophagy.store import RunStore

    lock = None
    try:
        if (run_dir / "config.yaml").exists():  # the one writer, before anything is read
            lock = RunLock(run_dir, "resume").acquire()
        store = RunStore.open(run_dir)
        cfg = store.config()
        store.keep = cfg.run.checkpoints
        if cfg.run.tracker != "none":
            from autophagy.trackers import check_tracker

            check_tracker(cfg)
    except (ValueError, AutophagyError) as err:
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
    from autophagy.errors import WriteError
    from autophagy.experiment import expand_grid, run_experiment
    from autophagy.progress import ExperimentProgress
    from autophagy.report.build import build_report
    from autophagy.runstate import resume_hint, sigterm_as_interrupt, stopped_by

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
    except WriteError as err:  # a full disk, a read-only folder: named, nothing half reported
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
    from autophagy.errors import AutophagyError
    from autophagy.lock import hold_unless_running
    from autophagy.report.build import build_report
    from autophagy.store import RunStore

    try:
        store = RunStore.open(run_dir)
        with hold_unless_running(run_dir, "report"):  # a live run: a snapshot, no manifest
            html = build_report(store, console=console)
    except (ValueError, AutophagyError) as err:
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
    except ValueError as err:
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


@theory_app.command("gaussian")
def theory_gaussian(
    n: Annotated[int, typer.Option(help="Real samples per generation.")] = 100,
    generations: Annotated[int, typer.Option(help="Generations after the first fit.")] = 20,
    policy: Annotated[
        str,
        typer.Option(
            help="mixed, fully_synthetic, accumulate or fresh_real; 'mixed:0.5' sets lambda."
        ),
    ] = "fully_synthetic",
    dim: Annotated[int, typer.Option(help="Dimension of the Gaussian (identity covariance).")] = 2,
    seeds: Annotated[int, typer.Option(help="Simulated runs, vectorised.")] = 2000,
    unbiased: Annotated[bool, typer.Option(help="Divide the covariance by n - 1.")] = False,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 0,
) -> None:
    """Closed-form E tr(Sigma_t) and E||mu_t - mu||^2 of a Gaussian MLE beside a simulation of
    SEEDS runs, with each mean's 99% confidence interval."""
    import numpy as np

    from autophagy.theory import expected_gaussian_trajectory_from_truth, simulate_gaussian_loop

    try:
        cov = np.eye(dim)
        expected = expected_gaussian_trajectory_from_truth(
            n=n,
            generations=generations,
            policy=policy,
            cov=cov,
            unbiased=unbiased,
            temperature=temperature,
        )
        start = time.perf_counter()
        sim = simulate_gaussian_loop(
            n=n,
            generations=generations,
            policy=policy,
            seeds=seeds,
            mean=np.zeros(dim),
            cov=cov,
            unbiased=unbiased,
            temperature=temperature,
            rng_seed=seed,
        )
        elapsed = time.perf_counter() - start
    except ValueError as err:
        fail(str(err))
    table = Table(
        title=f"Gaussian MLE, {policy}, n={n}, d={dim}: theory vs {seeds} simulated "
        f"runs ({elapsed:.2f} s)",
        title_justify="left",
    )
    for col in (
        "generation",
        "E tr Σ_t / d",
        "simulated ± 99% CI",
        "E‖μ_t-μ‖²",
        "simulated ± 99% CI",
        "agree",
    ):
        table.add_column(col, justify="right")
    z = 2.576
    quantities = [
        (expected.cov_trace_ratio, sim.cov_trace / dim),
        (expected.mean_shift_sq, sim.mean_sq_error(np.zeros(dim))),
    ]
    shown = sorted(set(np.linspace(0, generations, min(generations + 1, 11)).round().astype(int)))
    n_agree = 0
    for t in shown:
        cells, ok = [str(t)], True
        for theory, runs in quantities:
            mean, half = runs[:, t].mean(), z * runs[:, t].std(ddof=1) / np.sqrt(seeds)
            ok &= bool(abs(mean - theory[t]) <= half)
            cells += [f"{theory[t]:.4g}", f"{mean:.4g}±{half:.1g}"]
        n_agree += ok
        table.add_row(*cells, "[green]yes[/green]" if ok else "[red]no[/red]")
    console.print(table)
    console.print(
        f"{n_agree}/{len(shown)} generations inside the 99% interval on both moments "
        "(about 2% of rows may fall outside by chance)."
    )


@theory_app.command("stability")
def theory_stability(
    lam: Annotated[
        list[float], typer.Option("--lambda", help="Synthetic-to-real ratio; repeat for several.")
    ] = [0.1, 0.5, 1.0],  # noqa: B006
    L: Annotated[
        float | None, typer.Option("--L", help="Lipschitz constant of x -> grad log p [1].")
    ] = None,
    eps: Annotated[
        float | None, typer.Option(help="W1 distance of the best model to the data [0.1].")
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="Strong concavity of the likelihood [1].")
    ] = None,
    generations: Annotated[int, typer.Option(help="Generations of the bound.")] = 10,
    d0: Annotated[float, typer.Option(help="Initial distance ||theta_0 - theta*||.")] = 1.0,
    error: Annotated[
        float, typer.Option(help="Per-generation optimisation + statistical error (Theorem 2).")
    ] = 0.0,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run", help="A run directory: its measured contraction per lambda beside "
                     "the theorem (constants estimated for Gaussian runs, or --L/--eps/--alpha)."),
    ] = None,
) -> None:
    """The paper's stability condition lambda (1 + L eps / alpha) < 1, its contraction factor
    and the bound on ||theta_t - theta*|| per lambda; with --run, the same theorem beside the
    contraction a finished run measured (no retraining)."""
    if run_dir is not None:
        _stability_of_run(run_dir, L, eps, alpha)
        return
    L = 1.0 if L is None else L
    eps = 0.1 if eps is None else eps
    alpha = 1.0 if alpha is None else alpha
    from autophagy.theory import (
        contraction_factor,
        distance_bound,
        max_stable_lambda,
        stability_condition,
    )

    try:
        console.print(
            f"largest stable lambda: {max_stable_lambda(L, eps, alpha):.4g} "
            f"(L={L:g}, eps={eps:g}, alpha={alpha:g})"
        )
        table = Table(title_justify="left")
        for col in ("lambda", "stable", "rho", f"bound at t={generations}"):
            table.add_column(col, justify="right")
        for value in lam:
            if stability_condition(value, L, eps, alpha):
                rho = contraction_factor(value, L, eps, alpha)
                bound = distance_bound(
                    generations, value, L, eps, alpha, initial_distance=d0, error=error
                )[-1]
                table.add_row(f"{value:g}", "[green]yes[/green]", f"{rho:.4g}", f"{bound:.4g}")
            else:
                table.add_row(f"{value:g}", "[red]no[/red]", "-", "no guarantee")
    except ValueError as err:
        fail(str(err))
    console.print(table)


@theory_app.command("kde")
def theory_kde(
    n: Annotated[int, typer.Option(help="Real samples (the training set of generation 0).")] = 20,
    generations: Annotated[int, typer.Option(help="Generations after the first fit.")] = 10,
    h: Annotated[
        float | None, typer.Option(help="Fixed kernel width (default: a rule of thumb).")
    ] = None,
    rule: Annotated[str, typer.Option(help="Rule-of-thumb width when --h is not given.")] = "scott",
    lam: Annotated[
        float | None,
        typer.Option("--lambda", help="mixed: floor(lambda n) synthetic + the real data; "
                     "default fully synthetic."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Runs of the loop with the kde model.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the real sample.")] = 0,
) -> None:
    """Expected variance of a KDE retrained on its own samples (Fu et al., 2024) beside SEEDS
    runs of the kde model through the loop: a fixed width settles at (n-1) h^2, a rule of thumb
    grows geometrically, real data keeps both bounded."""
    import numpy as np

    from autophagy.theory.kde import expected_kde_trajectory
    from autophagy.theory.kde_check import kde_loop_moments

    try:
        if h is not None and not (np.isfinite(h) and h > 0):
            raise ValueError(f"--h: h must be a positive number, got {h!r}")
        real = np.random.default_rng(seed).standard_normal((n, 1))
        kwargs = {"h": h} if h is not None else {"rule": rule}
        theory, _ = expected_kde_trajectory(n=n, generations=generations,
                                            real_var=float(real.var()), lam=lam, **kwargs)
        start = time.perf_counter()
        v = kde_loop_moments(real, h if h is not None else rule, lam, generations, seeds)
        elapsed = time.perf_counter() - start
    except ValueError as err:
        fail(str(err))
    loop = "fully synthetic" if lam is None else f"mixed lambda={lam:g}"
    width = f"h={h:g}" if h is not None else f"rule {rule}"
    table = Table(title=f"KDE, {loop}, {width}, n={n}: E v_t (the training set's variance) vs "
                  f"{seeds} runs of the loop ({elapsed:.1f} s)", title_justify="left")
    for col in ("generation", "theory E v_t", "loop ± 99% CI", "agree"):
        table.add_column(col, justify="right")
    shown = sorted(set(np.linspace(0, generations, min(generations + 1, 11)).round().astype(int)))
    agree = 0
    for t in shown:
        mean, half = v[:, t].mean(), 2.576 * v[:, t].std(ddof=1) / np.sqrt(seeds)
        ok = bool(abs(mean - theory[t]) <= half + 1e-12)
        agree += ok
        table.add_row(str(t), f"{theory[t]:.4g}", f"{mean:.4g}±{half:.1g}",
                      "[green]yes[/green]" if ok else "[red]no[/red]")
    console.print(table)
    if h is not None and lam is None:
        console.print(f"fixed width, fully synthetic: settles at (n-1) h^2 = {(n - 1) * h * h:.4g}")
    elif lam is None:
        console.print("rule-of-thumb width, fully synthetic: grows geometrically, by "
                      f"{theory[-1] / theory[-2]:.4g} a generation ((n-1) h^2 for a fixed h)")
    else:
        console.print(f"real data each generation: bounded (limit {theory[-1]:.4g} here; "
                      "(n-1) h^2 is the fully synthetic fixed-width limit)")
    console.print(f"{agree}/{len(shown)} generations inside the 99% interval (about 1% of "
                  "rows may fall outside by chance).")


@theory_app.command("regression")
def theory_regression(
    n: Annotated[int, typer.Option(help="T, the rows of the fixed design.")] = 20,
    dim: Annotated[int, typer.Option(help="d, the features.")] = 8,
    noise: Annotated[float, typer.Option(help="sigma, the label noise.")] = 1.0,
    generations: Annotated[int, typer.Option(help="Generations after the first fit.")] = 10,
    seeds: Annotated[int, typer.Option(help="Runs of the loop per policy.")] = 4000,
) -> None:
    """Test error of least squares refit on its own labels (Gerstgrasser et al., 2024) beside
    SEEDS runs of the linear_regression model through the loop, each on its own Gaussian
    design: replacing grows like sigma^2 d / (T - d - 1) * (t + 1), accumulating stays below
    pi^2/6 times that constant."""
    import numpy as np

    from autophagy.theory.regression import (
        ACCUMULATE_BOUND,
        expected_regression_error,
        regression_error_constant,
    )
    from autophagy.theory.regression_check import regression_loop_errors

    try:
        c = regression_error_constant(n, dim, noise)
        if seeds < 2:
            raise ValueError(f"--seeds: need at least 2 runs, got {seeds}")
        start = time.perf_counter()
        runs = {p: regression_loop_errors(p, n=n, dim=dim, generations=generations,
                                          seeds=seeds, noise=noise)
                for p in ("fully_synthetic", "accumulate")}
        elapsed = time.perf_counter() - start
    except ValueError as err:
        fail(str(err))
    table = Table(title=f"Linear regression, T={n}, d={dim}, sigma={noise:g}: test error vs "
                  f"{seeds} runs of the loop per policy ({elapsed:.1f} s)", title_justify="left")
    for col in ("generation", "replace theory", "loop ± 99% CI", "accumulate theory",
                "loop ± 99% CI", "agree"):
        table.add_column(col, justify="right")
    shown = sorted(set(np.linspace(0, generations, min(generations + 1, 11)).round().astype(int)))
    agree = 0
    for t in shown:
        cells, ok = [str(t)], True
        for policy, errors in runs.items():
            theory = expected_regression_error(policy, n=n, dim=dim, generations=generations,
                                               noise=noise)
            mean, half = errors[:, t].mean(), 2.576 * errors[:, t].std(ddof=1) / np.sqrt(seeds)
            ok &= bool(abs(mean - theory[t]) <= half)
            cells += [f"{theory[t]:.4g}", f"{mean:.4g}±{half:.1g}"]
        agree += ok
        table.add_row(*cells, "[green]yes[/green]" if ok else "[red]no[/red]")
    console.print(table)
    console.print(f"C = sigma^2 d / (T - d - 1) = {c:.4g}: replacing adds C a generation; "
                  f"accumulating stays below pi^2/6 C = {ACCUMULATE_BOUND * c:.4g}")
    console.print(f"{agree}/{len(shown)} generations inside the 99% interval on both policies "
                  "(about 2% of rows may fall outside by chance).")


def _stability_of_run(run_dir: Path, L, eps, alpha) -> None:
    """``theory stability --run``: the per-lambda tables of a finished run."""
    from autophagy.report.stability import print_stability, run_constants, stability_tables
    from autophagy.store import RunStore

    try:
        store = RunStore.open(run_dir)
        given = {"L": L, "eps": eps, "alpha": alpha}
        constants = None
        if any(v is not None for v in given.values()):
            if any(v is None for v in given.values()):
                raise ValueError("--L, --eps and --alpha go together with --run (give all three)")
            constants = {**given, "source": "given on the command line"}
        else:
            constants = run_constants(store.config())
        tables = stability_tables(store.results(), constants)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    if not tables:
        fail(f"{run_dir}: no distance to the fixed point was measured (theta_distance, "
             "gen0_mmd2); add them to eval.metrics", code=1)
    print_stability(tables, console=console)


@app.command()
def verify(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, e.g. one you received.")],
) -> None:
    """Check every file of a run directory against its manifests (sha256 and size) without
    running or unpickling anything: one line per problem and a summary; exit 1 on a problem."""
    from autophagy.manifest import NAME, verify_run

    if not (run_dir / "config.yaml").exists() and not (run_dir / NAME).exists():
        fail(f"{str(run_dir)!r} has no config.yaml or {NAME}; is it a run directory?")
    result = verify_run(run_dir)
    for problem in result.problems:
        console.print(problem.line(run_dir), markup=False, highlight=False, soft_wrap=True)
    size = f"{result.bytes / 1e6:.1f} MB" if result.bytes >= 1e5 else f"{result.bytes / 1e3:.0f} kB"
    cells = f"{result.cells} cell{'s' * (result.cells != 1)}"
    checked = f"{result.files} files ({size}) in {cells} match their manifests"
    if result.problems:
        n = len(result.problems)
        console.print(f"{run_dir}: {n} problem{'s' * (n > 1)}; {checked}", markup=False,
                      highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"{run_dir}: clean, {checked}", markup=False, highlight=False, soft_wrap=True)
    from autophagy.runstate import run_state

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

    from autophagy.manifest import verify_run
    from autophagy.migrate import MigrationError, migrate_run, plan

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
    from autophagy.errors import AutophagyError
    from autophagy.lock import hold

    try:
        with hold(run_dir, "migrate"):  # it rewrites checkpoints and manifests: the one writer
            done = migrate_run(run_dir)
    except (MigrationError, AutophagyError) as err:
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
