"""One cell of an experiment: Algorithm 1 of Bertrand et al. (2024), with checkpoints.

::

    gen 0:  model.fit(real)
    gen t:  synth = model.sample(policy.n_synthetic(n))           (previous generation)
            train = policy.next_training_set(real, synth, state)
            model.fit(train, warm_start=True, budget=budget)       (fine-tune, as the paper)
            evaluate on held-out real data; checkpoint

Two RNG streams per cell: the *training* stream (synthetic draws, fitting, fresh real draws) is a
single generator whose state goes into every checkpoint, so a resumed cell continues with exactly
the numbers it would have drawn; the *evaluation* stream is derived from (seed, generation) alone,
so evaluation never moves the training trajectory and metrics can be added freely.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from autophagy.data import Dataset, dataset_from_array, load_dataset
from autophagy.metrics import DEFAULT_METRICS, EvalContext, Metric, get_metric, model_moments
from autophagy.models.base import DivergedError
from autophagy.models.registry import build_model
from autophagy.policies import Policy, parse_policy
from autophagy.store import CellStore, rows_frame

TRAIN_STREAM, EVAL_STREAM = 0, 1
Progress = Callable[..., None]


def training_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), TRAIN_STREAM]))


def evaluation_rng(seed: int, generation: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), EVAL_STREAM, generation]))


@dataclass
class CellResult:
    metrics: pd.DataFrame
    status: str = "done"  # done | diverged | failed
    message: str = ""
    model: Any = None
    samples: dict[int, np.ndarray] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    """Generation 0's fitted ``mean`` and ``cov``: what drift metrics and theory start from."""


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _fit(model, data, *, warm_start, budget, rng, progress: Progress | None):
    kwargs: dict[str, Any] = {"warm_start": warm_start, "budget": budget, "rng": rng}
    if progress is not None and _accepts(model.fit, "progress"):
        kwargs["progress"] = progress
    model.fit(data, **kwargs)


def as_data_shape(samples: Any, dataset: Dataset) -> np.ndarray:
    """Samples in the dataset's own shape: a model that works on flattened vectors (Gaussian,
    KDE on images) must still mix with real images and be drawn as images."""
    x = np.asarray(samples)
    shape = dataset.train.shape[1:]
    if x.shape[1:] != shape and x.size == len(x) * int(np.prod(shape)):
        x = x.reshape((len(x), *shape))
    return x


def _evaluate(
    model,
    dataset,
    metrics,
    *,
    seed,
    generation,
    n_eval,
    reference,
    temperature=1.0,
    features="auto",
    inception=None,
):
    rng = evaluation_rng(seed, generation)
    samples = as_data_shape(model.sample(n_eval, rng=rng, temperature=temperature), dataset)
    if not np.all(np.isfinite(samples)):
        raise DivergedError(f"generation {generation}: the model produced non-finite samples")
    if generation == 0 and not reference:
        mean, cov = model_moments(model, samples)
        reference.update(mean=mean, cov=cov)
    ctx = EvalContext(model, samples, dataset.test, dataset, rng, reference, features, inception)
    rows = [
        {"generation": generation, "metric": m.name, "value": m(ctx)}
        for m in metrics
        if m.applies(ctx)
    ]
    return rows, samples


def run_cell(
    model,
    dataset: Dataset,
    policy: Policy,
    generations: int,
    *,
    seed: int,
    metrics: Sequence[Metric],
    warm_start: bool = True,
    temperature: float = 1.0,
    eval_temperature: float = 1.0,
    n_eval: int = 1000,
    budget: int | None = None,
    initial_budget: int | None = None,
    store: CellStore | None = None,
    progress: Progress | None = None,
    features: str = "auto",
    inception: str | None = None,
) -> CellResult:
    """Run (or resume, when ``store`` holds checkpoints) one cell; never raises on divergence.

    ``temperature`` is the sampling temperature of the *synthetic training data* (MAD's bias
    knob); evaluation samples use ``eval_temperature`` (1: the model as it is).
    """
    real = dataset.train
    policy.check(len(real), dataset.pool)
    rng = training_rng(seed)
    state: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    samples_by_gen: dict[int, np.ndarray] = {}
    start = 0
    resumed = store.latest() if store is not None else None
    if resumed is not None:
        last, payload = resumed
        model.load_state_dict(payload["model"])
        rng.bit_generator.state = payload["rng"]
        state, reference, rows = payload["policy_state"], payload["reference"], payload["rows"]
        start = last + 1

    def step(generation: int, msg: str) -> None:
        if progress is not None:
            progress(generation=generation, total=generations, message=msg)

    if store is not None:
        store.set_status("running", generation=start - 1 if start else None)
    generation = start
    try:
        for generation in range(start, generations + 1):
            if generation == 0:
                step(0, "fitting generation 0 on real data")
                _fit(
                    model, real, warm_start=False, budget=initial_budget, rng=rng, progress=progress
                )
            else:
                step(generation, f"generation {generation}: sampling and refitting")
                synth = as_data_shape(
                    model.sample(policy.n_synthetic(len(real)), rng=rng, temperature=temperature),
                    dataset,
                )
                if not np.all(np.isfinite(synth)):
                    raise DivergedError(f"generation {generation}: non-finite synthetic samples")
                train, state = policy.next_training_set(
                    real, synth, state, rng=rng, pool=dataset.pool
                )
                _fit(model, train, warm_start=warm_start, budget=budget, rng=rng, progress=progress)
            new_rows, samples = _evaluate(
                model,
                dataset,
                metrics,
                seed=seed,
                generation=generation,
                n_eval=n_eval,
                reference=reference,
                temperature=eval_temperature,
                features=features,
                inception=inception,
            )
            rows.extend(new_rows)
            samples_by_gen[generation] = samples
            if store is not None:
                store.save_samples(generation, samples.astype(np.float32))
                payload = {
                    "model": model.state_dict(),
                    "rng": rng.bit_generator.state,
                    "policy_state": state,
                    "reference": reference,
                    "rows": rows,
                }
                store.save(generation, payload, rows)
                store.set_status("running", generation=generation)
    except DivergedError as err:
        status, msg = "diverged", str(err)
    except (FloatingPointError, np.linalg.LinAlgError) as err:
        status, msg = "diverged", f"generation {generation}: {type(err).__name__}: {err}"
    except Exception as err:  # one cell's bug must not stop the others
        status, msg = "failed", f"generation {generation}: {type(err).__name__}: {err}"
        if store is not None:
            (store.root / "error.txt").write_text(traceback.format_exc())
    else:
        status, msg, generation = "done", "", generations
    if store is not None:
        store.set_status(status, msg, generation)
    return CellResult(rows_frame(rows), status, msg, model, samples_by_gen, reference)


def resolve_metrics(metrics: Sequence[str | Metric] | None) -> list[Metric]:
    names = DEFAULT_METRICS if metrics is None else metrics
    return [m if isinstance(m, Metric) else get_metric(m) for m in names]


def run_loop(
    model,
    dataset: str | Dataset | np.ndarray,
    policy: str | Policy,
    generations: int,
    *,
    seed: int = 0,
    metrics: Sequence[str | Metric] | None = None,
    warm_start: bool = True,
    temperature: float = 1.0,
    n_eval: int = 1000,
    budget: int | None = None,
    initial_budget: int | None = None,
) -> pd.DataFrame:
    """Run one cell in memory and return its metrics (columns generation, metric, value).

    ``model`` is any object with the :class:`~autophagy.models.GenerativeModel` methods, or a
    family name ("gmm"); ``dataset`` a name ("moons"), a :class:`Dataset`, or an array of
    training points (20% is held out for evaluation); ``policy`` a :class:`Policy` or a string
    such as ``"mixed:0.5"`` or ``"fully_synthetic"``. Metrics that do not apply (NLL without
    ``log_prob``) are skipped. A diverged or failed cell raises ``RuntimeError`` here.

    Example:
        >>> df = run_loop("gmm", "moons", "mixed:0.5", generations=5, seed=0)
    """
    if isinstance(generations, bool) or not isinstance(generations, int | np.integer):
        raise ValueError(f"generations must be a whole number, got {generations!r}")
    if generations < 0:
        raise ValueError(f"generations must be >= 0, got {generations}")
    if isinstance(model, str):
        model = build_model(model)
    if isinstance(dataset, str):
        dataset = load_dataset(dataset, seed=seed)
    elif not isinstance(dataset, Dataset):
        dataset = dataset_from_array(np.asarray(dataset), seed=seed)
    result = run_cell(
        model,
        dataset,
        parse_policy(policy),
        int(generations),
        seed=seed,
        metrics=resolve_metrics(metrics),
        warm_start=warm_start,
        temperature=temperature,
        n_eval=n_eval,
        budget=budget,
        initial_budget=initial_budget,
    )
    if result.status != "done":
        raise RuntimeError(f"cell {result.status}: {result.message}")
    return result.metrics
