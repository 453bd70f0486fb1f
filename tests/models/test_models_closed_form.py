"""Gaussian mixture and KDE against independent references (scikit-learn, scipy)."""

import numpy as np
import pytest
from scipy.stats import gaussian_kde, multivariate_normal

from autophagy.models import GaussianMixture, KernelDensity, build_model
from autophagy.models.families.gaussian import GaussianMLE


def blobs(n=600, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    return centres[rng.integers(3, size=n)] + 0.4 * rng.normal(size=(n, 2))


def grid_mass(log_prob, lim=8.0, k=241):
    g = np.linspace(-lim, lim, k)
    xx, yy = np.meshgrid(g, g)
    dens = np.exp(log_prob(np.c_[xx.ravel(), yy.ravel()]))
    return dens.sum() * (g[1] - g[0]) ** 2


def test_gmm_recovers_the_three_centres():
    gmm = GaussianMixture(n_components=3).fit(blobs(), rng=np.random.default_rng(0))
    found = np.sort(np.round(gmm.means_).astype(int), axis=0)
    np.testing.assert_array_equal(found, np.sort(np.array([[-3, 0], [3, 0], [0, 3]]), axis=0))


def test_gmm_log_prob_integrates_to_one():
    gmm = GaussianMixture(n_components=3).fit(blobs(), rng=np.random.default_rng(0))
    assert grid_mass(gmm.log_prob) == pytest.approx(1.0, abs=1e-3)


def test_gmm_samples_follow_the_fitted_mixture():
    gmm = GaussianMixture(n_components=3).fit(blobs(), rng=np.random.default_rng(0))
    x = gmm.sample(20000, rng=np.random.default_rng(1))
    expected_mean = gmm.weights_ @ gmm.means_
    np.testing.assert_allclose(x.mean(0), expected_mean, atol=0.06)


def test_gmm_warm_start_starts_from_previous_parameters():
    x = blobs()
    gmm = GaussianMixture(n_components=3).fit(x, rng=np.random.default_rng(0))
    before = gmm.means_.copy()
    gmm.fit(x + 0.05, warm_start=True, budget=1, rng=np.random.default_rng(1))
    # one EM step from the previous optimum on shifted data moves each mean by about the shift
    np.testing.assert_allclose(gmm.means_, before + 0.05, atol=0.02)


def test_gmm_state_dict_round_trip_gives_identical_densities_and_warm_start():
    x = blobs()
    a = GaussianMixture(n_components=3).fit(x, rng=np.random.default_rng(0))
    b = GaussianMixture(n_components=3)
    b.load_state_dict(a.state_dict())
    np.testing.assert_allclose(b.log_prob(x), a.log_prob(x))
    np.testing.assert_array_equal(
        b.sample(50, rng=np.random.default_rng(3)), a.sample(50, rng=np.random.default_rng(3))
    )
    a.fit(x[:300], warm_start=True, budget=5, rng=np.random.default_rng(4))
    b.fit(x[:300], warm_start=True, budget=5, rng=np.random.default_rng(4))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)


def test_low_temperature_concentrates_gmm_samples():
    gmm = GaussianMixture(n_components=3).fit(blobs(), rng=np.random.default_rng(0))
    hot = gmm.sample(5000, rng=np.random.default_rng(1))
    cold = gmm.sample(5000, rng=np.random.default_rng(1), temperature=0.25)
    spread = lambda s: np.mean(np.min(((s[:, None] - gmm.means_[None]) ** 2).sum(-1), 1))  # noqa: E731
    assert spread(cold) == pytest.approx(0.25 * spread(hot), rel=0.1)


def test_kde_rule_of_thumb_matches_scipy_gaussian_kde():
    x = blobs(300)
    ours = KernelDensity("scott").fit(x)
    ref = gaussian_kde(x.T, bw_method="scott")
    q = blobs(50, seed=2)
    np.testing.assert_allclose(ours.log_prob(q), ref.logpdf(q.T), rtol=1e-10)


def test_kde_fixed_bandwidth_is_a_mixture_of_isotropic_gaussians():
    x = blobs(40)
    kde = KernelDensity(0.3).fit(x)
    q = blobs(5, seed=3)
    ref = np.log(np.mean([multivariate_normal(c, 0.09 * np.eye(2)).pdf(q) for c in x], axis=0))
    np.testing.assert_allclose(kde.log_prob(q), ref, rtol=1e-10)
    assert grid_mass(kde.log_prob) == pytest.approx(1.0, abs=1e-3)


def test_kde_samples_have_data_variance_plus_kernel_variance():
    x = blobs(500)
    kde = KernelDensity(0.5).fit(x)
    s = kde.sample(200000, rng=np.random.default_rng(0))
    np.testing.assert_allclose(s.var(0), x.var(0) + 0.25, rtol=0.02)


@pytest.mark.parametrize("bad", [0.0, -1.0, "nonsense"])
def test_kde_rejects_bad_bandwidth(bad):
    with pytest.raises(ValueError, match="bandwidth"):
        KernelDensity(bad)


def test_gaussian_log_prob_matches_scipy():
    x = blobs()
    m = GaussianMLE().fit(x)
    ref = multivariate_normal(x.mean(0), np.cov(x.T, bias=True)).logpdf(x[:20])
    np.testing.assert_allclose(m.log_prob(x[:20]), ref, rtol=1e-10)


def test_build_model_errors_name_the_field_and_choices():
    with pytest.raises(ValueError, match="^unknown model 'nope'; choose from: gaussian"):
        build_model("nope")
    with pytest.raises(
        ValueError, match="^options: unknown option 'n_comp'; accepted: n_components"
    ):
        build_model("gmm", {"n_comp": 3})
