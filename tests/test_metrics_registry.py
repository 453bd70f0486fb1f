"""The named metrics on an EvalContext: Gaussian parameter metrics, applicability, the registry's
names and errors, and the per-metric random streams."""

from __future__ import annotations

import numpy as np
import pytest

from autophagy.data.base import Dataset
from autophagy.metrics import (
    DEFAULT_METRICS,
    METRICS,
    EvalContext,
    Metric,
    get_metric,
    metric_rng,
    model_moments,
    negative_log_likelihood,
    register_metric,
    wasserstein2,
)
from autophagy.models.gaussian import GaussianMLE

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
        METRICS.pop("_test_constant", None)


def test_every_default_metric_applies_and_is_finite_on_a_gaussian_run():
    first = GaussianMLE().fit(gaussian_dataset().train, rng=np.random.default_rng(2))
    ctx = make_ctx(reference={"mean": first.mean_ + 0.1, "cov": first.cov_ * 2})
    for name in DEFAULT_METRICS:
        metric = get_metric(name)
        assert metric.applies(ctx), name
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
