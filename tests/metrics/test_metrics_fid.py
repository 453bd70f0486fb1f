"""Fréchet distance against the classic ``sqrtm`` formula (pytorch-fid), and KID against a direct
O(n^2) unbiased MMD^2."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import autophagy
from autophagy.metrics import (
    METRICS,
    frechet_distance,
    frechet_distance_from_moments,
    kid,
)


def pytorch_fid_frechet(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's ``calculate_frechet_distance``, re-typed as the reference."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def moments(x):
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize(("n", "dim"), [(50, 2), (200, 10), (1000, 64), (600, 128)])
def test_frechet_agrees_with_the_sqrtm_formula(n, dim):
    rng = np.random.default_rng(n * dim)
    a = rng.standard_normal((n, dim)) @ rng.standard_normal((dim, dim)) * 0.5
    b = rng.standard_normal((n + 17, dim)) * 1.3 + 0.2
    ref = pytorch_fid_frechet(*moments(a), *moments(b))
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)
    assert frechet_distance_from_moments(*moments(a), *moments(b)) == frechet_distance(a, b)


def test_frechet_closed_form_and_singular_covariances():
    # Two Gaussians with commuting covariances: |mu|^2 + sum (sqrt(s1) - sqrt(s2))^2.
    mu = np.array([1.0, -2.0, 0.5])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 0.0])
    expected = mu @ mu + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0) ** 2
    assert frechet_distance_from_moments(mu, s1, np.zeros(3), s2) == pytest.approx(expected)
    # Fewer points than features: singular covariances, still real, finite and >= 0.
    rng = np.random.default_rng(0)
    value = frechet_distance(rng.standard_normal((20, 50)), rng.standard_normal((30, 50)))
    assert np.isfinite(value) and value > 0
    x = rng.standard_normal((100, 4))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(x, x[:, :3])


def direct_kid(x, y, subsets, m, rng):
    """Unbiased MMD^2 with the cubic kernel, double loop over pairs in plain Python sums."""
    d = x.shape[1]
    out = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]

        def k(u, v):
            return (u @ v / d + 1.0) ** 3

        xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        yy = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        xy = sum(k(a[i], b[j]) for i in range(m) for j in range(m)) / (m * m)
        out.append(xx + yy - 2 * xy)
    return float(np.mean(out)), float(np.std(out))


def test_kid_matches_a_direct_implementation_and_is_unbiased():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 6))
    y = rng.standard_normal((90, 6)) + 0.5
    mean, std = kid(x, y, subsets=4, subset_size=40, rng=np.random.default_rng(11))
    ref_mean, ref_std = direct_kid(x, y, 4, 40, np.random.default_rng(11))
    assert mean == pytest.approx(ref_mean, rel=1e-9)
    assert std == pytest.approx(ref_std, rel=1e-9)
    # Same distribution: about 0 (unbiased), within a few standard errors; shifted: clearly > 0.
    same = kid(rng.standard_normal((2000, 6)), rng.standard_normal((2000, 6)), 50, 200)
    shifted = kid(rng.standard_normal((2000, 6)), rng.standard_normal((2000, 6)) + 0.5, 50, 200)
    assert abs(same.mean) < 3 * same.std / np.sqrt(50) + 1e-3
    assert shifted.mean > 10 * abs(same.mean) and shifted.mean > 3 * shifted.std / np.sqrt(50)
    assert kid(x, y, 3, 30) == kid(x, y, 3, 30)  # seeded by default


def test_frechet_metric_is_registered_and_runs_in_the_loop():
    assert "frechet" in METRICS and METRICS["frechet"].lower_is_better
    df = autophagy.run_loop("gmm", "moons", "mixed:0.5", generations=1, metrics=["frechet"])
    assert list(df["metric"].unique()) == ["frechet"]
    assert np.isfinite(df["value"]).all() and (df["value"] >= 0).all()
