"""The stability theorem beside the run: predicted and measured contraction per label.

For each label (a policy with one value of its parameters, all its seeds) and each measured
distance to the fixed point (``theta_distance`` with ``theta_step``: parameters; ``gen0_mmd2``
with ``step_mmd2``: samples), :func:`stability_table` estimates the contraction factor rho and the
plateau (:func:`autophagy.analysis.contraction.estimate_contraction`) and sets them beside this
project's bound ``rho = lam (1 + L eps / alpha) / (1 + lam)`` where the paper's condition
``lam (1 + L eps / alpha) < 1`` holds (Bertrand et al., 2024; :mod:`autophagy.theory.theorem`).
The theorem's constants come from the caller (``constants``), or for a Gaussian MLE run from the
data (:func:`run_constants`); without them the table still shows the perfect-model value
``lam / (1 + lam)`` (eps = 0), the smallest rho the theorem can give.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from autophagy.analysis.contraction import estimate_contraction
from autophagy.errors import AutophagyError
from autophagy.models import MODELS
from autophagy.models.base import closed_form, function_space, identifiable
from autophagy.policies import POLICIES
from autophagy.theory.mixing import Mixing

DISTANCES: tuple[tuple[str, str, bool, str], ...] = (
    ("function_distance", "function_step", False, "function space"),
    ("theta_distance", "theta_step", False, "parameters"),
    ("gen0_mmd2", "step_mmd2", True, "samples (squared MMD)"),
)
"""(distance metric, step metric, values are squared, what is measured), in report order after
the family's own (:func:`primary_distance`)."""
LAG2 = {"function_distance": "function_lag2"}
"""The two-generation step of a distance, where measured: its rho is then the variogram's
(:func:`~autophagy.analysis.contraction.variogram_rho`), which needs no fixed point."""

COLUMNS = [
    "label", "policy", "lambda", "rho_eps0", "rho_theorem", "predicted", "rho", "rho_se",
    "rho_low", "rho_high", "plateau", "plateau_se", "plateau_theory", "observed", "n_seeds",
]  # fmt: skip


def _theorem(lam: float, constants: Mapping[str, float] | None) -> tuple[float, float, str]:
    """(this project's rho with eps = 0, with the constants or NaN where the paper's condition
    fails, predicted verdict) for a mixed lambda."""
    from autophagy.theory.theorem import contraction_factor, stability_condition

    eps0 = lam / (1.0 + lam)
    if constants is None:
        return eps0, math.nan, "stable if ε≈0" if lam < 1 else "no guarantee"
    L, eps, alpha = constants["L"], constants["eps"], constants["alpha"]
    if stability_condition(lam, L, eps, alpha):
        return eps0, contraction_factor(lam, L, eps, alpha), "stable"
    return eps0, math.nan, "no guarantee"


def declared_mixing(policy: str, lam: float) -> Mixing | None:
    """The scheme a stored cell's policy declares (its name and lambda as the results have
    them), or ``None`` when the policy declares none or is not importable here."""
    try:
        cls = POLICIES[policy]
        names = {p.key for p in cls.parameters()}
        instance = cls.from_params(**({"lambda": lam} if "lambda" in names else {}))
        return instance.mixing()
    except (AutophagyError, ValueError, TypeError):  # a plugin not installed here, or one that
        return None  # cannot be rebuilt from the stored lambda


def ordered_labels(*frames: pd.DataFrame) -> pd.DataFrame:
    """(label, policy, lambda) of every label in ``frames``, in report order: by policy (each
    policy's ``order``, then name; fully synthetic last), then lambda (NaN last), then label."""
    parts = [f[["label", "policy", "lambda"]] for f in frames if f is not None and len(f)]
    if not parts:
        return pd.DataFrame(columns=["label", "policy", "lambda"])
    table = pd.concat(parts).drop_duplicates("label").copy()
    table["lambda"] = pd.to_numeric(table["lambda"], errors="coerce")
    table["_rank"] = table["policy"].map(lambda p: (policy_style(str(p))[0], str(p)))
    table["_nan"] = table["lambda"].isna()
    return table.sort_values(["_rank", "_nan", "lambda", "label"])[["label", "policy", "lambda"]]


def policy_style(name: str) -> tuple[int, str | None]:
    """(legend order, colour or colormap) a policy declares; unknown policies go in the middle."""
    if name not in POLICIES:
        return 50, None
    try:
        cls = POLICIES[name]
    except AutophagyError:  # registered lazily, but its module is not installed here
        return 50, None
    return getattr(cls, "order", 50), getattr(cls, "color", None)


def _trajectories(rows: pd.DataFrame, metric: str, like: pd.DataFrame | None = None) -> np.ndarray:
    """(seeds, generations) of ``metric``, NaN where a seed has no value; with ``like``, on the
    cells and generations of those rows (a metric undefined at the first generations)."""
    wide = rows[rows["metric"] == metric].pivot_table(
        index="cell", columns="generation", values="value", aggfunc="first", dropna=False
    )
    if like is not None:
        wide = wide.reindex(index=sorted(like["cell"].unique()),
                            columns=sorted(like["generation"].unique()))
    return wide.sort_index(axis=1).to_numpy(dtype=float)


def stability_table(
    metrics: pd.DataFrame,
    *,
    distance: str = "theta_distance",
    step: str | None = "theta_step",
    squared: bool = False,
    constants: Mapping[str, float] | None = None,
    level: float = 0.95,
    lag2: str | None = None,
) -> pd.DataFrame:
    """One row per label: lambda, predicted rho and verdict, measured rho with its interval,
    plateau, observed verdict (columns :data:`COLUMNS`). Empty when ``distance`` was not measured.

    ``constants``: ``{"L", "eps", "alpha"}`` of the theorem (optional). ``table.attrs`` holds the
    distance, the constants, the theorem's largest stable lambda (``theorem_max_lambda``) and the
    largest mixed lambda observed stable (``observed_max_lambda``, with ``observed_all_stable``
    when every mixed lambda of the run was).
    """
    from autophagy.theory.theorem import max_stable_lambda

    if lag2 is not None and not (metrics["metric"] == lag2).any():
        lag2 = None
    rows = metrics[metrics["metric"].isin([distance, step, lag2] if step else [distance])]
    records = []
    if len(rows):
        for label in ordered_labels(rows)["label"]:
            mine = rows[rows["label"] == label]
            d = _trajectories(mine, distance)
            s = _trajectories(mine, step) if step else None
            if d.shape[1] < 2 or (s is not None and s.shape != d.shape):
                continue
            l2 = _trajectories(mine, lag2, like=mine[mine["metric"] == distance]) if (
                lag2 and s is not None) else None
            est = estimate_contraction(d, s, squared=squared, level=level, lag2=l2)
            policy = str(mine["policy"].iloc[0])
            lam = float(mine["lambda"].iloc[0]) if "lambda" in mine else math.nan
            anchor = getattr(declared_mixing(policy, lam), "anchor", None)
            if anchor == "real" and math.isfinite(lam):
                eps0, rho_th, predicted = _theorem(lam, constants)
            elif anchor == "none":
                eps0, rho_th, predicted = math.nan, math.nan, "no guarantee"
            else:
                eps0, rho_th, predicted = math.nan, math.nan, "–"
            plateau_theory = math.nan
            if anchor == "real" and constants is not None and "n" in constants:
                from autophagy.analysis.contraction import gaussian_plateau

                n, dim = int(constants["n"]), int(constants["d"])
                plateau_theory = math.sqrt(gaussian_plateau(n, lam, dim))
            records.append({
                "label": label, "policy": policy, "scheme": anchor or "", "lambda": lam,
                "rho_eps0": eps0,
                "rho_theorem": rho_th, "predicted": predicted, "rho": est.rho,
                "rho_se": est.rho_se, "rho_low": est.rho_low, "rho_high": est.rho_high,
                "plateau": est.plateau if est.stable else math.nan,
                "plateau_se": est.plateau_se if est.stable else math.nan,
                "plateau_theory": plateau_theory,
                "observed": est.verdict, "n_seeds": est.n_seeds,
                "_ci_over": est.ci_over, "_method": est.method,
            })  # fmt: skip
    table = pd.DataFrame.from_records(records, columns=[*COLUMNS, "scheme", "_ci_over",
                                                        "_method"])
    mixed = table[(table["scheme"] == "real") & table["lambda"].notna()]
    stable = mixed[mixed["observed"] == "stable"]
    theorem_max = (
        max_stable_lambda(constants["L"], constants["eps"], constants["alpha"])
        if constants is not None
        else math.nan
    )
    table.attrs.update(
        distance=distance,
        step=step,
        squared=squared,
        level=level,
        constants=dict(constants) if constants is not None else None,
        theorem_max_lambda=theorem_max,
        observed_max_lambda=float(stable["lambda"].max()) if len(stable) else math.nan,
        observed_all_stable=bool(len(mixed) and len(stable) == len(mixed)),
        ci_over=", ".join(sorted(set(table["_ci_over"]))) if len(table) else "",
        method=", ".join(sorted(set(table["_method"]))) if len(table) else "",
    )
    return table


def primary_distance(family: Any) -> tuple[str, str]:
    """(distance metric, why) the verdict of a family's run reads, as the family declares it:
    its parameters when they are identifiable (they determine the model one to one), else its
    function-space values (:func:`~autophagy.models.base.function_space`: weights drift along
    directions that change nothing the model does), else its parameters all the same (a plugin
    that declares neither)."""
    if family is not None and identifiable(family):
        return "theta_distance", "the family's parameters are identifiable"
    if family is not None and function_space(family):
        return "function_distance", ("the family's parameters are not identifiable; its "
                                     "function is")
    return "theta_distance", "the family declares no function space"


def stability_tables(
    metrics: pd.DataFrame, constants: Mapping[str, float] | None = None, *, family: Any = None
) -> list[pd.DataFrame]:
    """A :func:`stability_table` for every distance of :data:`DISTANCES` the run measured, the
    one ``family`` (the model class or instance) reads its verdict on first
    (:func:`primary_distance`; ``table.attrs["primary"]``, with ``"why"``); when it was not
    measured, the first that was. The theorem's constants belong to the parameters, so only that
    table gets them."""
    if metrics is None or not len(metrics):
        return []
    primary, why = primary_distance(family)
    order = sorted(DISTANCES, key=lambda entry: entry[0] != primary)
    tables = []
    for distance, step, squared, what in order:
        if not (metrics["metric"] == distance).any():
            continue
        table = stability_table(
            metrics, distance=distance, step=step, squared=squared,
            constants=constants if distance == "theta_distance" else None,
            lag2=LAG2.get(distance),
        )  # fmt: skip
        table.attrs["what"] = what
        if len(table):
            tables.append(table)
    for i, table in enumerate(tables):
        table.attrs["primary"] = i == 0
        table.attrs["why"] = why if table.attrs["distance"] == primary else (
            f"{primary} was not measured" if i == 0 else "")
    return tables


def run_family(config: Any) -> Any:
    """The model class of a run's config, or None when its family is not importable here (a
    plugin): what :func:`stability_tables` reads the primary distance from."""
    try:
        return MODELS[config.model.name] if config.model.name in MODELS else None
    except AutophagyError:
        return None


def run_constants(config: Any, build_dataset: Callable[[Any, int], Any], *,
                  max_seeds: int = 5) -> dict[str, float] | None:
    """The theorem's ``alpha``, ``L``, ``eps`` estimated for a run whose family declares the
    Gaussian closed form, from its real data (``build_dataset(config, seed)``, as the run built
    it; :func:`~autophagy.analysis.contraction.gaussian_constants`, averaged over the first
    ``max_seeds`` data seeds), or None for any other model family."""
    from autophagy.analysis.contraction import gaussian_constants

    if (config.model.name not in MODELS or closed_form(MODELS[config.model.name]) != "gaussian"
            or config.model.options.get("unbiased", False)):
        return None
    seeds = [config.data.seed] if config.data.seed is not None else list(config.seed)
    data = [build_dataset(config, s).train for s in seeds[:max_seeds]]
    found = [gaussian_constants(x) for x in data]
    return {
        "n": len(data[0]),
        "d": int(np.prod(data[0].shape[1:])),
        "alpha": float(np.mean([c.alpha for c in found])),
        "L": float(np.mean([c.L for c in found])),
        "eps": float(np.mean([c.eps for c in found])),
        "eps_raw": float(np.mean([c.eps_raw for c in found])),
        "eps_floor": float(np.mean([c.eps_floor for c in found])),
        "source": f"estimated from the real data of {len(found)} seed(s), Gaussian MLE",
    }
