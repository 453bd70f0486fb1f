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
from typing import Any, Protocol

import numpy as np
import pandas as pd

from autophagy.data import Dataset, dataset_from_array, load_dataset
from autophagy.errors import InputError, WriteError
from autophagy.metrics import EvalContext, Metric, evaluate, model_moments, resolve_metrics
from autophagy.metrics.feature_metrics import HeldOutFeatures
from autophagy.models.base import DivergedError, check_sampling_temperature, sample_at
from autophagy.models.registry import build_model
from autophagy.policies import Policy, parse_policy
from autophagy.store import CellStore, rows_frame
from autophagy.threads import pinned_threads, share

TRAIN_STREAM, EVAL_STREAM = 0, 1


class Tracker(Protocol):
    """What a cell sends to an experiment tracker (:mod:`autophagy.run.trackers` implements it):
    each generation's metric rows once saved, then its final status."""

    def log(self, generation: int, rows: list[dict[str, Any]]) -> None:
        """``rows``: ``{"generation", "metric", "value"}`` of one generation, as the store has."""

    def close(self, status: str) -> None:
        """The cell stopped: ``done``, ``diverged`` or ``failed``."""

Progress = Callable[..., None]


def training_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), TRAIN_STREAM]))


def evaluation_rng(seed: int, generation: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), EVAL_STREAM, generation]))


@dataclass(frozen=True)
class LoopSettings:
    """How one cell retrains: generations after the first fit, its seed, and the fits.

    ``temperature`` is the sampling temperature of the *synthetic training data* (MAD's bias
    knob). ``budget`` / ``initial_budget`` go to ``model.fit`` for the warm-started generations /
    generation 0; ``None`` leaves the model's own default (its constructor is the one home of it).
    """

    generations: int
    seed: int = 0
    warm_start: bool = True
    temperature: float = 1.0
    budget: int | None = None
    initial_budget: int | None = None

    def __post_init__(self):
        g = self.generations
        if isinstance(g, bool) or not isinstance(g, int | np.integer) or g < 0:
            raise InputError(f"generations must be a whole number >= 0, got {g!r}")


@dataclass(frozen=True)
class EvalSettings:
    """How each generation is measured against the held-out data.

    ``metrics``: names or :class:`Metric` objects (``None``: every default metric that applies);
    ``n_samples`` drawn at ``temperature`` (1: the model as it is); ``features`` / ``inception``:
    the feature extractor of the feature-space metrics; ``compare_to``: the real data the
    samples are compared with, ``"test"`` (held out) or ``"train"``.
    """

    metrics: tuple[str | Metric, ...] | None = None
    n_samples: int = 1000
    temperature: float = 1.0
    features: str = "auto"
    inception: str | None = None
    compare_to: str = "test"
    downstream: dict[str, Any] = field(default_factory=dict)
    """The downstream metrics' classifier and label source (config ``eval.downstream``)."""

    @classmethod
    def from_config(cls, section: Any) -> EvalSettings:
        """From the config's ``eval`` section (the fields of the same names)."""
        fields = {k: getattr(section, k) for k in cls.__dataclass_fields__ if hasattr(section, k)}
        if hasattr(fields.get("downstream"), "model_dump"):
            fields["downstream"] = fields["downstream"].model_dump()
        if fields.get("metrics") is not None:
            fields["metrics"] = tuple(fields["metrics"])
        return cls(**fields)


@dataclass
class CellResult:
    metrics: pd.DataFrame
    status: str = "done"  # done | diverged | failed
    message: str = ""
    model: Any = None
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


def check_conditional(model, dataset: Dataset, policy: Policy) -> None:
    """A class-conditional model (its ``class_conditional``) needs labelled images and a policy
    that keeps rows as they are (its label plane travels in them); told its number of classes
    here, before it fits."""
    if not getattr(model, "class_conditional", False):
        return
    from autophagy.data.labelled import has_labels, n_class_cells
    from autophagy.data.registry import datasets_providing

    if dataset.kind != "images" or not has_labels(dataset):
        raise InputError(f"model: a class-conditional model generates labelled images; "
                         f"dataset {dataset.name!r} has no image labels; labelled datasets: "
                         f"{', '.join(datasets_providing('labels'))}")
    if not policy.keeps_rows:
        from autophagy.policies import POLICIES

        keeping = [name for name in POLICIES if POLICIES[name].keeps_rows]
        raise InputError(f"loop.policies.{policy.name}: changes the samples it is given, so the "
                         f"labels a class-conditional model drew them for would not hold; use "
                         f"{', '.join(keeping)}, or an unconditional model")
    model.set_classes(n_class_cells(dataset, _with_groups(model)))


def _with_groups(model) -> bool:
    """Whether a class-conditional model's classes are (label, group) cells."""
    return getattr(model, "condition_on", "label") == "cell"


def split_labelled(x: Any, dataset: Dataset, model) -> tuple[np.ndarray, tuple[np.ndarray, Any]]:
    """Images and their (labels, groups or None) from a class-conditional ``model``'s arrays
    with a label plane."""
    from autophagy.data.labelled import split_cells
    from autophagy.models.families.conditional import split_plane

    images, cells = split_plane(x)
    return images, split_cells(dataset, cells, _with_groups(model))


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
    held_out_features=None,
    policy=None,
    compare_to="test",
    policy_state=None,
    train=None,
    downstream=None,
    conditional=False,
):
    """Sample generation ``generation`` and compute ``metrics`` on it: (rows, samples).

    ``held_out_features`` (a :class:`~autophagy.metrics.feature_metrics.HeldOutFeatures` made
    once per cell) keeps the held-out set's features from one generation to the next. A
    ``conditional`` model's samples and training set come with their label plane: the metrics
    get the images, and the labels apart.
    """
    rng = evaluation_rng(seed, generation)
    samples = sample_at(model, n_eval, rng=rng, temperature=temperature)
    sample_labels = train_labels = None
    if conditional:
        samples, sample_labels = split_labelled(samples, dataset, model)
        if train is not None:
            train, train_labels = split_labelled(train, dataset, model)
    samples = as_data_shape(samples, dataset)
    if not np.all(np.isfinite(samples)):
        raise DivergedError(f"generation {generation}: the model produced non-finite samples")
    if generation == 0 and not reference:
        mean, cov = model_moments(model, samples)
        reference.update(mean=mean, cov=cov)
        snapshot = getattr(model, "reference_state", None)
        if callable(snapshot):  # what scoring under generation 0 needs (text families)
            reference["model"] = snapshot()
    ctx = EvalContext(
        model,
        samples,
        dataset.train if compare_to == "train" else dataset.test,
        dataset,
        rng,
        reference,
        features,
        inception,
        held_out_features=held_out_features,
        policy=policy,
        policy_state=dict(policy_state or {}) if generation else {},
        train=train,
        downstream=downstream or {},
        sample_labels=sample_labels,
        train_labels=train_labels,
    )
    values = evaluate(metrics, ctx)
    rows = [{"generation": generation, "metric": k, "value": v} for k, v in values.items()]
    return rows, samples


class CellRun:
    """One cell between two generations: what it has done and how to do its next generation.

    Why a class: :func:`run_cells` steps several cells in lockstep so that the fits of one model
    family train as one batch (:func:`autophagy.models.families.neural.fit_batched`);
    :func:`run_cell`
    steps one. Either way a cell draws only from its own RNG streams, so its numbers are its own.
    The constructor resumes from the store's newest checkpoint when there is one.
    """

    def __init__(
        self,
        model,
        dataset: Dataset,
        policy: Policy,
        loop: LoopSettings,
        eval: EvalSettings | None = None,
        store: CellStore | None = None,
        progress: Progress | None = None,
        tracker: Tracker | None = None,
    ):
        self.model, self.dataset, self.loop, self.store = model, dataset, loop, store
        self.progress, self.tracker = progress, tracker
        self.eval = eval or EvalSettings()
        metrics = resolve_metrics(self.eval.metrics, dataset.kind)
        self.held_out_features = HeldOutFeatures()  # the held-out set's features, once per cell
        policy.check(len(dataset.train), dataset.pool)
        check_conditional(model, dataset, policy)
        self.conditional = bool(getattr(model, "class_conditional", False))
        """Whether samples carry a label plane (a class-conditional model): real data get
        theirs before the policy mixes them."""
        self._real: dict[str, np.ndarray | None] = {}
        check_sampling_temperature(model, loop.temperature, self.eval.temperature)
        self.policy = policy.bind(dataset)
        names = {m.name for m in metrics}
        extra = resolve_metrics(self.policy.extra_metrics())
        self.metrics = metrics + [m for m in extra if m.name not in names]
        self.rng = training_rng(loop.seed)
        self.state: dict[str, Any] = {}
        self.reference: dict[str, Any] = {}
        self.rows: list[dict[str, Any]] = []
        self.generation = 0
        """The next generation to run."""
        self.status: str | None = None
        self.message = ""
        self.train: np.ndarray | None = None
        """The training set of the generation being fitted (the downstream metrics read it)."""
        resumed = store.latest() if store is not None else None
        if resumed is not None:
            last, payload = resumed
            model.load_state_dict(payload["model"])
            self.rng.bit_generator.state = payload["rng"]
            self.state, self.reference = payload["policy_state"], payload["reference"]
            self.rows = payload["rows"]
            self.generation = last + 1
        if store is not None:
            store.set_status("running", generation=self.generation - 1 if self.generation else None)

    @property
    def active(self) -> bool:
        return self.status is None and self.generation <= self.loop.generations

    def _step(self, message: str) -> None:
        if self.progress is not None:
            self.progress(generation=self.generation, total=self.loop.generations, message=message)

    def real(self, split: str) -> np.ndarray | None:
        """The dataset's ``split`` (train or pool) as the model sees it: with the label plane
        of its classes for a class-conditional model (made once)."""
        if split not in self._real:
            x = getattr(self.dataset, split)
            if self.conditional and x is not None:
                from autophagy.data.labelled import class_cells
                from autophagy.models.families.conditional import with_labels

                x = with_labels(x, class_cells(self.dataset, split, _with_groups(self.model)))
            self._real[split] = x
        return self._real[split]

    def training_set(self) -> tuple[np.ndarray, bool, int | None]:
        """(data, warm_start, budget) of the next generation's fit; draws its synthetic data."""
        generation, real = self.generation, self.real("train")
        if generation == 0:
            self._step("fitting generation 0 on real data")
            self.train = real
            return real, False, self.loop.initial_budget
        self._step(f"generation {generation}: sampling and refitting")
        n_synth = self.policy.n_synthetic(len(real))
        synth = self._shaped(
            sample_at(self.model, n_synth, rng=self.rng, temperature=self.loop.temperature))
        if not np.all(np.isfinite(synth)):
            raise DivergedError(f"generation {generation}: non-finite synthetic samples")
        more = {"draw": self._draw, "model": self.model} if self.policy.draws_more else {}
        train, self.state = self.policy.next_training_set(
            real, synth, self.state, rng=self.rng, pool=self.real("pool"), **more
        )
        self.train = train
        return train, self.loop.warm_start, self.loop.budget

    def _shaped(self, samples: Any) -> np.ndarray:
        """Samples as the policy mixes them: in the data's shape, or as they come with their
        label plane from a class-conditional model."""
        if self.conditional:
            return np.asarray(samples)
        return as_data_shape(samples, self.dataset)

    def _draw(self, m: int) -> np.ndarray:
        """``m`` more synthetic samples of the current model (training stream): for a policy
        that draws until it has enough (``draws_more``, the verified loop)."""
        synth = self._shaped(
            sample_at(self.model, m, rng=self.rng, temperature=self.loop.temperature))
        if not np.all(np.isfinite(synth)):
            raise DivergedError(f"generation {self.generation}: non-finite synthetic samples")
        return synth

    def fit(self, data: np.ndarray, warm_start: bool, budget: int | None) -> None:
        _fit(self.model, data, warm_start=warm_start, budget=budget, rng=self.rng,
             progress=self.progress)

    def record(self) -> None:
        """Evaluate the generation just fitted, checkpoint it, and move on to the next."""
        new_rows, samples = _evaluate(
            self.model,
            self.dataset,
            self.metrics,
            seed=self.loop.seed,
            generation=self.generation,
            n_eval=self.eval.n_samples,
            reference=self.reference,
            temperature=self.eval.temperature,
            features=self.eval.features,
            inception=self.eval.inception,
            held_out_features=self.held_out_features,
            policy=self.policy,
            compare_to=self.eval.compare_to,
            policy_state=self.state,
            train=self.train,
            downstream=self.eval.downstream,
            conditional=self.conditional,
        )
        self.rows.extend(new_rows)
        if self.store is not None:
            self.store.save_samples(self.generation, samples.astype(np.float32))
            payload = {
                "model": self.model.state_dict(),
                "rng": self.rng.bit_generator.state,
                "policy_state": self.state,
                "reference": self.reference,
                "rows": self.rows,
            }
            self.store.save(self.generation, payload, self.rows)
            self.store.set_status("running", generation=self.generation)
        if self.tracker is not None:  # after the checkpoint: each generation reaches it once
            self.tracker.log(self.generation, new_rows)
        self.generation += 1

    def fail(self, err: Exception) -> None:
        """Stop the cell: ``diverged`` (a result of self-consuming training) or ``failed`` (a bug,
        with its traceback in the store); the other cells go on. A failed write of the store (a
        full disk, a read-only folder) is not the cell's result: it is raised again, and the run
        stops with nothing half-written reported."""
        if isinstance(err, WriteError):
            raise err
        generation = self.generation
        if isinstance(err, DivergedError):
            self.status, self.message = "diverged", str(err)
        elif isinstance(err, FloatingPointError | np.linalg.LinAlgError):
            self.status = "diverged"
            self.message = f"generation {generation}: {type(err).__name__}: {err}"
        else:
            self.status = "failed"
            self.message = f"generation {generation}: {type(err).__name__}: {err}"
            if self.store is not None:
                self.store.save_error(
                    "".join(traceback.format_exception(type(err), err, err.__traceback__))
                )

    def finish(self) -> CellResult:
        generation = min(self.generation, self.loop.generations)
        if self.status is None:
            self.status, generation = "done", self.loop.generations
        if self.store is not None:
            self.store.set_status(self.status, self.message, generation)
        if self.tracker is not None:
            self.tracker.close(self.status)
        return CellResult(rows_frame(self.rows), self.status, self.message, self.model,
                          self.reference)


def run_cell(
    model,
    dataset: Dataset,
    policy: Policy,
    loop: LoopSettings,
    eval: EvalSettings | None = None,
    store: CellStore | None = None,
    progress: Progress | None = None,
) -> CellResult:
    """Run (or resume, when ``store`` holds checkpoints) one cell; never raises on divergence."""
    return run_cells([CellRun(model, dataset, policy, loop, eval, store, progress)])[0]


def run_cells(runs: Sequence[CellRun]) -> list[CellResult]:
    """Run every cell to its end, generation by generation. Cells at the same generation fit
    together: one batch (stacked flows, vmapped MLPs) where the family allows it (its
    ``batchable``), else one after another. A cell that diverges or fails stops; the others go
    on."""
    while active := [r for r in runs if r.active]:
        generation = min(r.generation for r in active)
        jobs = []
        for run in (r for r in active if r.generation == generation):
            try:
                jobs.append((run, *run.training_set()))
            except Exception as err:
                run.fail(err)
        for run, err in _fit_together(jobs):
            if err is not None:
                run.fail(err)
            else:
                try:
                    run.record()
                except Exception as err:
                    run.fail(err)
    return [r.finish() for r in runs]


def _fit_together(jobs: list[tuple[CellRun, np.ndarray, bool, int | None]]):
    """(run, exception or None) for each job, fitted as one batch when they can be."""
    models = [job[0].model for job in jobs]
    batchable = len(jobs) > 1 and all(getattr(m, "batchable", False) for m in models)
    if batchable and len({type(m) for m in models}) == 1 and len({j[2] for j in jobs}) == 1:
        from autophagy.models.families.neural import fit_batched

        errors = fit_batched(
            models,
            [job[1] for job in jobs],
            warm_start=jobs[0][2],
            budgets=[job[3] for job in jobs],
            rngs=[job[0].rng for job in jobs],
            progress=[job[0].progress for job in jobs],
        )
        return [(job[0], err) for job, err in zip(jobs, errors, strict=True)]
    out = []
    for run, data, warm_start, budget in jobs:
        try:
            run.fit(data, warm_start, budget)
            out.append((run, None))
        except Exception as err:
            out.append((run, err))
    return out


def run_loop(
    model,
    dataset: str | Dataset | np.ndarray,
    policy: str | Policy,
    generations: int,
    *,
    seed: int = 0,
    eval: EvalSettings | None = None,
    threads: int | None = None,
    **settings: Any,
) -> pd.DataFrame:
    """Run one cell in memory and return its metrics (columns generation, metric, value).

    ``model`` is any object with the :class:`~autophagy.models.GenerativeModel` methods, or a
    family name ("gmm"); ``dataset`` a name ("moons"), a :class:`Dataset`, or an array of
    training points (20% is held out for evaluation); ``policy`` a :class:`Policy` or a string
    such as ``"mixed:0.5"`` or ``"fully_synthetic"``. ``settings`` are the other fields of
    :class:`LoopSettings` (``warm_start``, ``temperature``, ``budget``, ``initial_budget``) and
    of :class:`EvalSettings` (``metrics``, ``n_samples``, ...), or pass ``eval=``. Metrics that
    do not apply (NLL without ``log_prob``) are skipped. A diverged or failed cell raises
    ``RuntimeError`` here.

    ``threads``: torch and BLAS threads while the cell runs, the caller's settings restored
    after (:func:`autophagy.threads.pinned_threads`). By default every core, what ``autophagy
    run`` gives a run of one cell; pass 1 when running small models cell after cell, what each
    worker of a sweep that fills the cores gets (``benchmarks/inline_threads.py``).

    Example:
        >>> df = run_loop("gmm", "moons", "mixed:0.5", generations=5, seed=0)
    """
    loop_keys = set(LoopSettings.__dataclass_fields__)
    eval_keys = set(EvalSettings.__dataclass_fields__)
    unknown = sorted(set(settings) - loop_keys - eval_keys)
    if unknown:
        raise TypeError(f"run_loop() got an unexpected keyword argument {unknown[0]!r}")
    loop = LoopSettings(generations, seed, **{k: v for k, v in settings.items() if k in loop_keys})
    eval_fields = {k: v for k, v in settings.items() if k in eval_keys}
    if eval_fields.get("metrics") is not None:
        eval_fields["metrics"] = tuple(eval_fields["metrics"])
    eval = eval or EvalSettings(**eval_fields)
    if isinstance(model, str):
        model = build_model(model)
    if isinstance(dataset, str):
        dataset = load_dataset(dataset, seed=seed)
    elif not isinstance(dataset, Dataset):
        dataset = dataset_from_array(np.asarray(dataset), seed=seed)
    with pinned_threads(share(1) if threads is None else threads):
        result = run_cell(model, dataset, parse_policy(policy), loop, eval)
    if result.status != "done":
        raise RuntimeError(f"cell {result.status}: {result.message}")
    return result.metrics
