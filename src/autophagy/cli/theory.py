"""``autophagy theory ...``: closed forms beside runs. The numbers come from
:mod:`autophagy.analysis.agreement` and :mod:`autophagy.theory`; these commands only parse options
and print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autophagy.cli import commands
from autophagy.cli.commands import app, fail
from autophagy.errors import AutophagyError

theory_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode="markdown",
    help="Closed forms of the theory, checked by simulation.",
)
app.add_typer(theory_app, name="theory")


def _print(agreement) -> None:
    from autophagy.report.agreement import agreement_table

    commands.console.print(agreement_table(agreement))
    for note in agreement.notes:
        commands.console.print(note)
    commands.console.print(agreement.summary)


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
    from autophagy.analysis.agreement import gaussian_agreement

    try:
        agreement = gaussian_agreement(n=n, generations=generations, policy=policy, dim=dim,
                                       seeds=seeds, unbiased=unbiased,
                                       temperature=temperature, seed=seed)
    except AutophagyError as err:
        fail(str(err))
    _print(agreement)


@theory_app.command("stability")
def theory_stability(
    lam: Annotated[
        list[float], typer.Option("--lambda", help="Synthetic-to-real ratio; repeat for several.")
    ] = [0.1, 0.5, 1.0],  # noqa: B006
    L: Annotated[
        float | None,
        typer.Option("--L", help="Lipschitz constant in x of the Hessian of log p in theta "
                     "(the paper's assumption) [1]."),
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
        float, typer.Option(help="Per-generation optimisation + statistical error (the "
                            "paper's finite-sample theorem).")
    ] = 0.0,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run", help="A run directory: its measured contraction per lambda beside "
                     "the bounds (constants estimated for Gaussian runs, or --L/--eps/--alpha)."),
    ] = None,
) -> None:
    """Per lambda: the paper's stability condition lambda (1 + L eps / alpha) < 1 and its
    contraction constant lambda (1 + L eps / alpha) ("paper", Bertrand et al., ICLR 2024, as
    docs/stability.md cites it), this project's tighter bound lambda (1 + L eps / alpha) /
    (1 + lambda) ("ours") and the bound on ||theta_t - theta*|| from it; with --run, the same
    beside the contraction a finished run measured (no retraining)."""
    if run_dir is not None:
        _stability_of_run(run_dir, L, eps, alpha)
        return
    from autophagy.theory import (
        contraction_factor,
        distance_bound,
        max_stable_lambda,
        paper_contraction_factor,
        stability_condition,
    )

    L = 1.0 if L is None else L
    eps = 0.1 if eps is None else eps
    alpha = 1.0 if alpha is None else alpha
    try:
        commands.console.print(
            f"largest stable lambda: {max_stable_lambda(L, eps, alpha):.4g} "
            f"(L={L:g}, eps={eps:g}, alpha={alpha:g}; paper's condition)"
        )
        table = Table(
            title_justify="left", caption_justify="left",
            caption="paper: the condition and constant lambda (1 + L eps / alpha) of Bertrand "
                    "et al. (ICLR 2024), sourced in docs/stability.md; ours: this project's "
                    "bound, the paper's constant divided by 1 + lambda (tighter).",
        )
        heads = ("lambda", "stable (paper)", "ρ paper", "ρ ours", f"bound t={generations} (ours)")
        for col in heads:
            table.add_column(col, justify="right")
        for value in lam:
            if stability_condition(value, L, eps, alpha):
                paper = paper_contraction_factor(value, L, eps, alpha)
                rho = contraction_factor(value, L, eps, alpha)
                bound = distance_bound(
                    generations, value, L, eps, alpha, initial_distance=d0, error=error
                )[-1]
                table.add_row(f"{value:g}", "[green]yes[/green]", f"{paper:.4g}", f"{rho:.4g}",
                              f"{bound:.4g}")
            else:
                table.add_row(f"{value:g}", "[red]no[/red]", "-", "-", "no guarantee")
    except AutophagyError as err:
        fail(str(err))
    commands.console.print(table)


def _stability_of_run(run_dir: Path, L, eps, alpha) -> None:
    """``theory stability --run``: the per-lambda tables of a finished run."""
    from autophagy.analysis.stability import run_constants, run_family, stability_tables
    from autophagy.report.stability import print_stability
    from autophagy.run.cells import build_dataset
    from autophagy.store import RunStore

    given = {"L": L, "eps": eps, "alpha": alpha}
    if any(v is not None for v in given.values()) and any(v is None for v in given.values()):
        fail("--L, --eps and --alpha go together with --run (give all three)")
    try:
        store = RunStore.open(run_dir)
        config = store.config()
        if any(v is not None for v in given.values()):
            constants = {**given, "source": "given on the command line"}
        else:
            constants = run_constants(config, build_dataset)
        tables = stability_tables(store.results(), constants, family=run_family(config))
    except (FileNotFoundError, AutophagyError) as err:
        fail(str(err))
    if not tables:
        fail(f"{run_dir}: no distance to the fixed point was measured (function_distance, "
             "theta_distance, gen0_mmd2); add them to eval.metrics", code=1)
    print_stability(tables, console=commands.console)


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
    from autophagy.analysis.agreement import kde_agreement

    try:
        agreement = kde_agreement(n=n, generations=generations, h=h, rule=rule, lam=lam,
                                  seeds=seeds, seed=seed)
    except AutophagyError as err:
        fail(str(err))
    _print(agreement)


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
    from autophagy.analysis.agreement import regression_agreement

    try:
        agreement = regression_agreement(n=n, dim=dim, noise=noise, generations=generations,
                                         seeds=seeds)
    except AutophagyError as err:
        fail(str(err))
    _print(agreement)
