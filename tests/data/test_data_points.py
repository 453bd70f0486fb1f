"""Generated point datasets: the samplers' laws, and the registry that builds them by name."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering, KMeans

from autophagy.data import (
    DATASETS,
    DatasetEntry,
    dataset_options,
    describe_datasets,
    load_dataset,
)
from autophagy.data import points as P

TOYS = [P.moons, P.eight_gaussians, P.circles, P.checkerboard, P.swiss_roll, P.pinwheel]
SAMPLERS = [*TOYS, P.gaussian]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def angle_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference of angles, wrapped to [0, pi]."""
    return np.abs(np.angle(np.exp(1j * (a - b))))


# --- every sampler ----------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda f: f.__name__)
def test_sampler_returns_finite_float64_of_shape_n_by_2(sampler):
    x = sampler(257, rng())
    assert x.shape == (257, 2)
    assert x.dtype == np.float64
    assert np.all(np.isfinite(x))
    assert sampler(0, rng()).shape == (0, 2)


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda f: f.__name__)
def test_sampler_is_deterministic_under_a_seed_and_differs_across_seeds(sampler):
    np.testing.assert_array_equal(sampler(100, rng(3)), sampler(100, rng(3)))
    np.testing.assert_array_equal(sampler(100, rng(3)), sampler(100, 3))  # an int seed works
    assert not np.allclose(sampler(100, rng(3)), sampler(100, rng(4)))


@pytest.mark.parametrize("sampler", TOYS, ids=lambda f: f.__name__)
def test_toys_follow_the_unit_scale_convention(sampler):
    # Module convention: geometric centre at the origin, per-axis sd in [0.5, 1.5].
    x = sampler(20_000, rng())
    assert np.all(np.abs(x.mean(axis=0)) < 0.35)
    assert np.all((x.std(axis=0) > 0.5) & (x.std(axis=0) < 1.5))
    assert np.mean(np.abs(x) > 3) < 1e-3


@pytest.mark.parametrize("n", [-1, 2.5, True, "10"])
def test_sampler_refuses_a_bad_count_naming_n(n):
    with pytest.raises(ValueError, match="^n must be an integer >= 0"):
        P.moons(n, rng())


# --- the law of each toy ----------------------------------------------------------------------


def test_eight_gaussians_kmeans_recovers_centres_at_radius_and_multiples_of_45_degrees():
    x = P.eight_gaussians(4000, rng(), radius=2.0, std=0.1)
    centres = KMeans(8, n_init=10, random_state=0).fit(x).cluster_centers_
    # Each centre averages ~500 points of sd 0.1: standard error ~0.0045, so 0.03 is > 6 SE.
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.0, atol=0.03)
    angles = np.sort(np.mod(np.arctan2(centres[:, 1], centres[:, 0]) + 0.1, 2 * np.pi)) - 0.1
    assert np.all(angle_gap(angles, np.arange(8) * np.pi / 4) < 0.02)
    np.testing.assert_allclose(P.eight_gaussians_centres(2.0)[2], [0.0, 2.0], atol=1e-12)


def test_moons_form_two_balanced_clusters_separated_by_a_gap():
    x = P.moons(1000, rng(), noise=0.05)
    # The arcs are 0.5 * 2/sqrt(3) = 0.58 apart at their closest, > 10 noise sds: single linkage
    # (chaining along each arc) splits them exactly; the sizes are Binomial(1000, 1/2), sd 16.
    labels = AgglomerativeClustering(n_clusters=2, linkage="single").fit_predict(x)
    sizes = np.bincount(labels)
    assert np.all(np.abs(sizes - 500) < 80)


def test_moons_lie_on_two_half_circles_of_the_documented_radius_and_centres():
    x = P.moons(2000, rng(), noise=0.0)
    r = P.MOONS_SCALE
    centres = np.array([[-0.5, -0.25], [0.5, 0.25]]) * r
    dist = np.abs(np.linalg.norm(x[:, None, :] - centres[None], axis=2) - r)
    on = np.argmin(dist, axis=1)
    assert np.all(dist.min(axis=1) < 1e-9)
    # Upper arc above its centre, lower arc below its centre.
    assert np.all(x[on == 0, 1] >= centres[0, 1] - 1e-9)
    assert np.all(x[on == 1, 1] <= centres[1, 1] + 1e-9)


def test_circles_put_half_the_points_on_each_of_two_radii():
    x = P.circles(2000, rng(), radius=2.0, factor=0.5, noise=0.05)
    r = np.linalg.norm(x, axis=1)
    outer = r > 1.5
    # The rings are 1.0 apart, 20 noise sds: the radius threshold classifies without error.
    assert np.all(np.abs(r[outer] - 2.0) < 0.3) and np.all(np.abs(r[~outer] - 1.0) < 0.3)
    np.testing.assert_allclose([r[outer].mean(), r[~outer].mean()], [2.0, 1.0], atol=0.01)
    assert abs(outer.mean() - 0.5) < 0.05  # Binomial sd 0.011


def test_checkerboard_fills_only_and_evenly_the_squares_with_even_index_sum():
    x = P.checkerboard(8000, rng())
    assert np.all(np.abs(x) <= 2.0)
    i, j = np.floor(x + 2.0).astype(int).T
    assert np.all((i + j) % 2 == 0)
    counts = np.bincount(4 * i + j, minlength=16)[[4 * a + b for a in range(4) for b in range(4)]]
    filled = counts[[(a + b) % 2 == 0 for a in range(4) for b in range(4)]]
    assert len(filled) == 8 and np.all(np.abs(filled - 1000) < 150)  # Binomial sd ~31


def test_swiss_roll_points_sit_at_angle_equal_to_their_unscaled_radius():
    x = P.swiss_roll(2000, rng(), noise=0.0)
    t = np.linalg.norm(x, axis=1) / P.SWISS_ROLL_SCALE
    assert np.all((t >= 1.5 * np.pi - 1e-9) & (t <= 4.5 * np.pi + 1e-9))
    assert np.all(angle_gap(np.arctan2(x[:, 1], x[:, 0]), t) < 1e-9)


@pytest.mark.parametrize("arms", [3, 5])
def test_pinwheel_has_rotational_symmetry_of_order_arms(arms):
    x = P.pinwheel(3000, rng(), arms=arms)
    centres = KMeans(arms, n_init=10, random_state=0).fit(x).cluster_centers_
    radii = np.linalg.norm(centres, axis=1)
    np.testing.assert_allclose(radii, radii.mean(), rtol=0.05)
    angles = np.sort(np.arctan2(centres[:, 1], centres[:, 0]))
    gaps = np.diff(np.append(angles, angles[0] + 2 * np.pi))
    np.testing.assert_allclose(gaps, 2 * np.pi / arms, atol=0.1)


# --- gaussian -----------------------------------------------------------------------------------


def test_gaussian_sample_moments_match_the_given_mean_and_cov_within_five_standard_errors():
    n = 20_000
    mean = np.array([1.0, -2.0, 0.5])
    cov = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
    x = P.gaussian(n, rng(), mean=mean.tolist(), cov=cov.tolist())
    # SE of a mean entry: sqrt(S_ii / n); of a covariance entry: sqrt((S_ij^2 + S_ii S_jj) / n).
    assert np.all(np.abs(x.mean(axis=0) - mean) < 5 * np.sqrt(np.diag(cov) / n))
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(np.cov(x.T) - cov) < 5 * se_cov)


@pytest.mark.parametrize(
    ("kwargs", "mean", "cov"),
    [
        ({}, np.zeros(2), np.eye(2)),
        ({"dim": 4}, np.zeros(4), np.eye(4)),
        ({"cov": 3.0, "dim": 3}, np.zeros(3), 3.0 * np.eye(3)),
        ({"mean": [1, 2], "cov": 0.5}, np.array([1.0, 2.0]), 0.5 * np.eye(2)),
        ({"cov": [1.0, 4.0]}, np.zeros(2), np.diag([1.0, 4.0])),
    ],
)
def test_gaussian_params_expand_the_shorthand_forms_of_mean_and_cov(kwargs, mean, cov):
    m, c = P.gaussian_params(**kwargs)
    np.testing.assert_array_equal(m, mean)
    np.testing.assert_array_equal(c, cov)
    assert P.gaussian(5, rng(), **kwargs).shape == (5, len(mean))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cov": [[1.0, 2.0], [2.0, 1.0]]}, "cov must be symmetric positive definite; its small"),
        ({"cov": [[1.0, 0.5], [0.0, 1.0]]}, "cov must be symmetric positive definite; it is not"),
        ({"cov": -1.0}, "cov must be symmetric positive definite; a scalar variance"),
        ({"cov": [1.0, 0.0]}, "cov must be symmetric positive definite; a diagonal"),
        ({"cov": [[1.0, 0.0, 0.0]]}, "cov must be symmetric positive definite; got an array"),
        ({"mean": [0, 0, 0], "cov": [1.0, 1.0]}, "mean, cov and dim disagree"),
        ({"mean": [0, 0], "dim": 3}, "mean, cov and dim disagree"),
        ({"mean": [0, np.nan]}, "mean must be a non-empty list of finite numbers"),
        ({"dim": 0}, "dim must be an integer >= 1"),
    ],
)
def test_gaussian_refuses_bad_parameters_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        P.gaussian(10, rng(), **kwargs)


# --- registry -----------------------------------------------------------------------------------


def test_describe_datasets_lists_every_registered_name_with_a_one_line_description():
    listed = describe_datasets()
    assert [name for name, _ in listed] == list(DATASETS)
    assert {"moons", "eight_gaussians", "circles", "checkerboard", "swiss_roll"} <= set(DATASETS)
    assert {"pinwheel", "gaussian", "file"} <= set(DATASETS)
    assert all(text and "\n" not in text for _, text in listed)


@pytest.mark.parametrize("name", [n for n, e in DATASETS.items() if e.sampler is not None])
def test_generated_train_test_pool_are_disjoint_with_requested_sizes(name):
    ds = load_dataset(name, n_train=300, n_test=200, n_pool=100, seed=1)
    assert (len(ds.train), len(ds.test), len(ds.pool)) == (300, 200, 100)
    rows = [tuple(r) for part in (ds.train, ds.test, ds.pool) for r in part]
    assert len(set(rows)) == 600
    assert ds.name == name and ds.kind == DATASETS[name].kind


def test_generated_defaults_are_1000_train_2000_test_and_no_pool():
    ds = load_dataset("moons")
    assert (len(ds.train), len(ds.test), ds.pool) == (1000, 2000, None)
    assert ds.params == {"noise": 0.05}


def test_generated_test_set_does_not_depend_on_n_train_or_n_pool():
    a = load_dataset("eight_gaussians", n_train=100, seed=5)
    b = load_dataset("eight_gaussians", n_train=700, n_pool=50, seed=5)
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.test, load_dataset("eight_gaussians", seed=6).test)


def test_load_dataset_is_deterministic_under_a_seed():
    a, b = load_dataset("pinwheel", seed=2, n_pool=10), load_dataset("pinwheel", seed=2, n_pool=10)
    for part in ("train", "test", "pool"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))


def test_gaussian_dataset_carries_its_true_mean_and_full_cov_in_params():
    ds = load_dataset("gaussian", mean=[1.0, 2.0, 3.0], cov=[1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ds.params["mean"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ds.params["cov"], np.diag([1.0, 2.0, 3.0]))
    assert ds.params["dim"] == 3 and ds.shape == (3,)


def test_eight_gaussians_dataset_carries_its_centres_and_options_in_params():
    ds = load_dataset("eight_gaussians", radius=3.0)
    assert ds.params["radius"] == 3.0 and ds.params["std"] == 0.1
    np.testing.assert_allclose(ds.params["centres"], P.eight_gaussians_centres(3.0))


def test_dataset_options_reads_the_sampler_keywords_and_defaults():
    assert dataset_options("moons") == {"noise": 0.05}
    assert dataset_options("circles") == {"radius": 2.0, "factor": 0.5, "noise": 0.05}
    assert dataset_options("file") == {"header": None}


def test_unknown_dataset_name_lists_the_choices():
    names = ", ".join(DATASETS)
    with pytest.raises(ValueError) as err:
        load_dataset("foo")
    assert str(err.value) == f"unknown dataset 'foo'; choose from: {names}"
    with pytest.raises(ValueError, match="^unknown dataset 'moon'; did you mean 'moons'\\?"):
        load_dataset("moon")


def test_unknown_option_names_the_option_and_the_accepted_ones():
    with pytest.raises(ValueError) as err:
        load_dataset("circles", width=3)
    assert str(err.value) == (
        "options: unknown option 'width' for dataset 'circles'; accepted: radius, factor, noise"
    )
    with pytest.raises(ValueError, match="did you mean 'noise'"):
        load_dataset("moons", noize=0.1)


def test_unknown_option_for_a_dataset_without_options_says_it_takes_none():
    entry = DatasetEntry("bare", sampler=lambda n, rng: np.zeros((n, 2)))
    DATASETS.register("bare", entry)
    try:
        with pytest.raises(
            ValueError, match="^options: unknown option 'noise' for dataset 'bare'; it takes none"
        ):
            load_dataset("bare", noise=0.1)
    finally:
        DATASETS.unregister("bare")


def test_bad_option_value_is_reported_with_the_dataset_name():
    with pytest.raises(ValueError, match="^dataset 'moons': noise must be a non-negative number"):
        load_dataset("moons", noise=-0.1)
    with pytest.raises(ValueError, match="^dataset 'gaussian': cov must be symmetric positive"):
        load_dataset("gaussian", cov=[[1.0, 2.0], [2.0, 1.0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_train": 1}, "n_train must be an integer >= 2, got 1"),
        ({"n_train": 10.5}, "n_train must be an integer >= 2, got 10.5"),
        ({"n_test": 0}, "n_test must be an integer >= 1, got 0"),
        ({"n_pool": -1}, "n_pool must be an integer >= 0, got -1"),
        ({"seed": -3}, "seed must be an integer >= 0, got -3"),
        ({"n_train": True}, "n_train must be an integer >= 2, got True"),
    ],
)
def test_bad_split_sizes_are_refused_naming_the_field(kwargs, message):
    with pytest.raises(ValueError) as err:
        load_dataset("moons", **kwargs)
    assert str(err.value) == message


def test_path_given_to_a_generated_dataset_is_refused():
    with pytest.raises(ValueError, match="^path: dataset 'moons' is generated and reads no file"):
        load_dataset("moons", path="x.npy")


def test_dataset_entry_needs_exactly_one_builder():
    with pytest.raises(TypeError):
        DatasetEntry("neither")
    with pytest.raises(TypeError):
        DatasetEntry("both", sampler=P.moons, loader=lambda **kw: None)
