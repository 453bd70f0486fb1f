"""The named metrics on an EvalContext: Gaussian parameter metrics, applicability, the registry's
names and errors, what metrics say about themselves, groups computed once, and the per-metric
random streams."""

from __future__ import annotations

import numpy as np
import pytest

from autophagy.data.base import Dataset
from autophagy.metrics import (
    DEFAULT_METRICS,
    METRICS,
    EvalContext,
    Metric,
    MetricGroup,
    evaluate,
    get_metric,
    metric_rng,
    model_moments,
    negative_log_likelihood,
    register_metric,
    resolve_metrics,
    wasserstein2,
)
from autophagy.metrics.feature_metrics import HeldOutFeatures
from autophagy.models.families.gaussian import GaussianMLE
from autophagy.registry import UnknownName

TRUE_MEAN = np.array([1.0, -2.0])
TRUE_COV = np.array([[2.0, 0.6], [0.6, 1.0]])


def gaussian_dataset(with_params: bool = True) -> Dataset:
    r = np.random.default_rng(0)
    draw = r.multivariate_normal(TRUE_MEAN, TRUE_COV, size=700)
    params = {"mean": TRUE_MEAN, "cov": TRUE_COV} if with_params else {}
    return Dataset("gaussian", train=draw[:400], test=draw[400:], params=params)


def make_ctx(
    model=None, dataset: Dataset | None = None, reference=None, seed: int = 1
) -> EvalContext:
    dataset = dataset or gaussian_dataset()
    model = model or GaussianMLE().fit(dataset.train, rng=np.random.default_rng(2))
    samples = model.sample(500, rng=np.random.default_rng(3))
    return EvalContext(
        model=model,
        samples=samples,
        held_out=dataset.test,
        dataset=dataset,
        rng=np.random.default_rng(seed),
        reference={} if reference is None else reference,
    )


class SampleOnly:
    """A model with no parameters of its own and no log_prob: metrics must use its samples."""

    def __init__(self, x: np.ndarray):
        self.x = x

    def sample(self, n, *, rng, temperature=1.0):
        return self.x[rng.integers(len(self.x), size=n)]


# --- registry -------------------------------------------------------------------------------------


def test_registry_names_are_the_default_metrics():
    assert DEFAULT_METRICS == [
        "w2",
        "sliced_w2",
        "mmd",
        "energy",
        "nll",
        "mean_error",
        "cov_error",
        "mean_shift_sq",
        "cov_trace_ratio",
        "theta_distance",
        "theta_step",
        "function_distance",
        "function_step",
        "function_lag2",
        "gen0_mmd2",
        "step_mmd2",
    ]
    assert set(DEFAULT_METRICS) <= set(METRICS)
    assert all(METRICS[name].name == name for name in METRICS)
    assert all(get_metric(name) is METRICS[name] for name in DEFAULT_METRICS)


def test_unknown_metric_error_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown metric 'foo'; choose from: w2, sliced_w2") as e:
        get_metric("foo")
    assert all(name in str(e.value) for name in DEFAULT_METRICS)


def test_register_metric_refuses_duplicates_unless_replace():
    extra = Metric(name="_test_constant", compute=lambda ctx: 1.0, description="a test")
    try:
        register_metric(extra)
        assert get_metric("_test_constant")(make_ctx()) == 1.0
        with pytest.raises(ValueError, match="already registered"):
            register_metric(extra)
        register_metric(extra, replace=True)
    finally:
        METRICS.unregister("_test_constant")


def test_every_default_metric_applies_and_is_finite_on_a_gaussian_run():
    first = GaussianMLE().fit(gaussian_dataset().train, rng=np.random.default_rng(2))
    ctx = make_ctx(reference={"mean": first.mean_ + 0.1, "cov": first.cov_ * 2})
    networks_only = {"function_distance", "function_step", "function_lag2"}
    for name in DEFAULT_METRICS:
        metric = get_metric(name)
        assert metric.applies(ctx) is (name not in networks_only), name  # identifiable: no
        if name in networks_only:  # function space needed
            continue
        value = metric(ctx)
        assert isinstance(value, float) and np.isfinite(value), name


def test_point_metrics_compare_samples_with_held_out():
    ctx = make_ctx()  # 500 samples and 300 held-out points: W2 needs no subsampling
    assert get_metric("w2")(ctx) == pytest.approx(wasserstein2(ctx.samples, ctx.held_out))
    assert get_metric("nll")(ctx) == pytest.approx(negative_log_likelihood(ctx.model, ctx.held_out))


def test_point_metrics_flatten_image_shaped_samples():
    r = np.random.default_rng(4)
    images = Dataset("tiny", train=r.random((50, 1, 2, 2)), test=r.random((40, 1, 2, 2)))
    ctx = EvalContext(
        model=SampleOnly(images.train),
        samples=r.random((30, 1, 2, 2)),
        held_out=images.test,
        dataset=images,
        rng=np.random.default_rng(5),
    )
    for name in ["w2", "sliced_w2", "mmd", "energy"]:
        assert np.isfinite(get_metric(name)(ctx)), name


def test_unknown_metric_is_an_unknown_name_and_suggests_a_close_one():
    with pytest.raises(UnknownName, match=r"unknown metric 'sliced_w3'; did you mean 'sliced_w2'"):
        get_metric("sliced_w3")


def test_resolve_metrics_takes_names_objects_or_none_for_the_defaults():
    assert [m.name for m in resolve_metrics(None)] == DEFAULT_METRICS
    extra = Metric(name="_test_unregistered", compute=lambda ctx: 2.0, description="a test")
    assert resolve_metrics(["mmd", extra]) == [METRICS["mmd"], extra]


def test_metrics_describe_themselves():
    assert METRICS["w2"].title == "Wasserstein-2 distance"
    assert Metric(name="x", compute=lambda ctx: 0.0, description="").title == "x"
    by_order = sorted(METRICS, key=lambda name: METRICS[name].order)
    assert by_order[:5] == ["w2", "sliced_w2", "mmd", "energy", "frechet"]
    assert dict(METRICS.describe())["mmd"] == METRICS["mmd"].description
    for name in ["fid", "kid", "precision", "recall", "density", "coverage"]:
        assert METRICS[name].needs == {"features"}, name
    for name in ["class_kl", "classes_covered"]:
        assert METRICS[name].needs == {"classifier"}, name
    assert all(not METRICS[name].needs for name in [*DEFAULT_METRICS, "frechet"])


# --- groups and evaluate --------------------------------------------------------------------------


class CountingGroup:
    """A real group: mean and spread of the samples' first coordinate, with a call counter."""

    def __init__(self):
        self.calls = 0
        self.group = MetricGroup("_test_moments", self.compute)
        self.metrics = [
            self.group.metric("_test_mean", description="mean of x[:, 0]"),
            self.group.metric("_test_spread", description="std of x[:, 0]", lower_is_better=False),
        ]

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        self.calls += 1
        x = np.asarray(ctx.samples).reshape(len(ctx.samples), -1)[:, 0]
        noise = metric_rng(ctx, "_test_moments").normal(scale=1e-3)
        return {"_test_mean": float(x.mean() + noise), "_test_spread": float(x.std())}


@pytest.fixture
def counting_group():
    group = CountingGroup()
    for metric in group.metrics:
        register_metric(metric)
    yield group
    for metric in group.metrics:
        METRICS.unregister(metric.name)


def test_a_group_is_computed_once_per_context_and_matches_one_by_one(counting_group):
    ctx = make_ctx()
    values = evaluate(["_test_mean", "w2", "_test_spread"], ctx)
    assert counting_group.calls == 1
    assert list(values) == ["_test_mean", "w2", "_test_spread"]
    alone = {name: get_metric(name)(make_ctx()) for name in values}  # a fresh context each
    assert values == alone
    assert counting_group.calls == 3
    assert evaluate(["_test_spread"], ctx) == {"_test_spread": values["_test_spread"]}
    assert counting_group.calls == 3  # still memoized on ctx


def test_a_group_runs_once_per_generation_in_the_loop(counting_group):
    import autophagy

    df = autophagy.run_loop(
        "gaussian", "moons", "mixed:0.5", 2, seed=0, metrics=["_test_spread", "_test_mean"]
    )
    assert counting_group.calls == 3  # generations 0, 1, 2
    assert list(df["metric"][:2]) == ["_test_spread", "_test_mean"]


def test_evaluate_skips_what_does_not_apply_and_defaults_to_the_default_metrics():
    dataset = gaussian_dataset(with_params=False)
    ctx = make_ctx(model=SampleOnly(dataset.train), dataset=dataset)
    assert list(evaluate(None, ctx)) == ["w2", "sliced_w2", "mmd", "energy", "gen0_mmd2",
                                         "step_mmd2"]


def test_prdc_group_in_evaluate_equals_each_metric_alone():
    r = np.random.default_rng(11)
    held = r.standard_normal((300, 3))
    dataset = Dataset("g3", train=held, test=held)

    def ctx() -> EvalContext:
        samples = np.random.default_rng(12).standard_normal((250, 3)) * 1.2
        return EvalContext(None, samples, held, dataset, np.random.default_rng(13))

    names = ["precision", "fid", "recall", "density", "kid", "coverage"]
    together = evaluate(names, ctx())
    assert together == {name: get_metric(name)(ctx()) for name in names}
    assert METRICS["precision"].group is METRICS["coverage"].group is not None


class CountingExtractor:
    """Features = the first two columns, counting how many sets it was asked for."""

    name = "_test_counting"

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return np.asarray(x, dtype=np.float64).reshape(len(x), -1)[:, :2]


def test_held_out_features_are_computed_once_per_cell_and_kept_on_disk(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOPHAGY_CACHE", str(tmp_path))
    dataset = gaussian_dataset()
    extractor, cell = CountingExtractor(), HeldOutFeatures()
    first = cell.get(extractor, dataset, dataset.test)
    for _ in range(3):  # later generations of the same cell
        np.testing.assert_array_equal(cell.get(extractor, dataset, dataset.test), first)
    assert extractor.calls == 1
    np.testing.assert_array_equal(HeldOutFeatures().get(extractor, dataset, dataset.test), first)
    assert extractor.calls == 1  # another cell reads the disk cache
    HeldOutFeatures().get(extractor, dataset, dataset.test[:10])
    assert extractor.calls == 2  # another held-out set is not confused with it


# --- applicability --------------------------------------------------------------------------------


def test_nll_does_not_apply_without_log_prob():
    dataset = gaussian_dataset()
    ctx = make_ctx(model=SampleOnly(dataset.train), dataset=dataset)
    assert not get_metric("nll").applies(ctx)
    assert get_metric("nll").applies(make_ctx())


def test_parameter_errors_need_a_known_gaussian_and_drift_needs_a_reference():
    ctx = make_ctx(dataset=gaussian_dataset(with_params=False))
    for name in ["mean_error", "cov_error", "mean_shift_sq", "cov_trace_ratio"]:
        assert not get_metric(name).applies(ctx), name
    ctx = make_ctx(reference={"mean": TRUE_MEAN})
    assert get_metric("mean_shift_sq").applies(ctx)
    assert not get_metric("cov_trace_ratio").applies(ctx)


# --- Gaussian parameter metrics -------------------------------------------------------------------


def test_model_moments_prefers_the_fitted_parameters():
    ctx = make_ctx()
    mean, cov = model_moments(ctx.model, ctx.samples)
    np.testing.assert_array_equal(mean, ctx.model.mean_)
    np.testing.assert_array_equal(cov, ctx.model.cov_)


def test_model_moments_falls_back_to_the_mle_of_the_samples():
    x = np.random.default_rng(6).standard_normal((200, 3))
    mean, cov = model_moments(SampleOnly(x), x)
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False, bias=True))


def test_parameter_errors_of_a_gaussian_mle_fit():
    ctx = make_ctx()
    model = ctx.model
    assert get_metric("mean_error")(ctx) == pytest.approx(np.linalg.norm(model.mean_ - TRUE_MEAN))
    expected = np.sqrt(((model.cov_ - TRUE_COV) ** 2).sum())
    assert get_metric("cov_error")(ctx) == pytest.approx(expected)
    # 400 training points: the fit is close to the truth (mean sd ~ sqrt(2/400) per axis).
    assert get_metric("mean_error")(ctx) < 0.25
    assert get_metric("cov_error")(ctx) < 0.6


def test_drift_metrics_against_the_reference_fit():
    ctx = make_ctx()
    model = ctx.model
    ctx.reference = {"mean": model.mean_.copy(), "cov": model.cov_.copy()}
    assert get_metric("mean_shift_sq")(ctx) == 0.0
    assert get_metric("cov_trace_ratio")(ctx) == pytest.approx(1.0)
    ctx.reference = {"mean": model.mean_ + [3.0, 4.0], "cov": model.cov_ * 4}
    assert get_metric("mean_shift_sq")(ctx) == pytest.approx(25.0)
    assert get_metric("cov_trace_ratio")(ctx) == pytest.approx(0.25)


def test_parameter_error_names_a_wrong_shape():
    dataset = gaussian_dataset()
    dataset.params = {"mean": np.zeros(3), "cov": np.eye(3)}
    with pytest.raises(ValueError, match=r"dataset.params\['mean'\] has shape \(3,\)"):
        get_metric("mean_error")(make_ctx(dataset=dataset))


# --- randomness -----------------------------------------------------------------------------------


def test_metrics_do_not_consume_ctx_rng_and_do_not_depend_on_order():
    ctx = make_ctx()
    state = ctx.rng.bit_generator.state
    alone = get_metric("sliced_w2")(ctx)
    for name in DEFAULT_METRICS:
        if get_metric(name).applies(ctx):
            get_metric(name)(ctx)
    assert ctx.rng.bit_generator.state == state
    assert get_metric("sliced_w2")(ctx) == alone


def test_metric_streams_differ_by_name_and_by_rng_state():
    ctx = make_ctx(seed=7)
    a = metric_rng(ctx, "w2").random(4)
    np.testing.assert_array_equal(a, metric_rng(ctx, "w2").random(4))
    assert not np.array_equal(a, metric_rng(ctx, "mmd").random(4))
    other = make_ctx(seed=8)
    assert not np.array_equal(a, metric_rng(other, "w2").random(4))
    assert get_metric("sliced_w2")(ctx) != get_metric("sliced_w2")(other)
