"""Point datasets: 2-D toys and Gaussians of any dimension, as pure samplers.

Every sampler is a pure function ``(n, rng, **options) -> np.ndarray`` of shape (n, d), float64.
Draws are i.i.d. from one fixed distribution (sklearn's ``make_moons`` instead puts points on an
even grid of the arc), so train, test and pool drawn from one seed are independent samples of the
same law, and a metric against the held-out set measures distance to that law.

Scaling convention for the 2-D toys: each is placed with its geometric centre at the origin and
multiplied by a fixed constant, never by statistics of the drawn sample (which would give train
and test slightly different laws), so that each coordinate has a standard deviation between about
0.5 and 1.5 and nearly all points lie in [-3, 3]^2. Noise options are standard deviations in these
output units. The per-toy constants are stated in each docstring.

References: the toys follow the FFJORD collection (Grathwohl et al., 2019); the pinwheel is from
Johnson et al. (2016), "Composing graphical models with neural networks"; the Gaussian is the
warm-up example of Bertrand et al. (2024).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from autophagy.errors import InputError

MOONS_SCALE = 2.0 / np.sqrt(3.0)  # sklearn's moons have x standard deviation sqrt(3)/2
MOONS_SHIFT = np.array([0.5, 0.25])  # centre of the pair of arcs in sklearn's coordinates
SWISS_ROLL_SCALE = 1.0 / 7.0  # raw coordinates t (cos t, sin t) have standard deviation ~ 6.9
PINWHEEL_SCALE = 1.4  # raw pinwheel (radius ~ 1) has standard deviation ~ 0.74 per axis
CHECKERBOARD_HALF_WIDTH = 2.0  # the board covers [-2, 2]^2


def check_int(value: Any, field: str, minimum: int) -> int:
    """An integer >= ``minimum`` (bools and floats refused), or a ValueError naming ``field``."""
    try:
        if isinstance(value, bool):
            raise TypeError
        out = operator.index(value)
    except TypeError:
        raise InputError(f"{field} must be an integer >= {minimum}, got {value!r}") from None
    if out < minimum:
        raise InputError(f"{field} must be an integer >= {minimum}, got {value!r}")
    return out


def check_number(value: Any, field: str, *, positive: bool = False) -> float:
    """A finite number >= 0 (> 0 with ``positive``), or a ValueError naming ``field``."""
    kind = "a positive" if positive else "a non-negative"
    try:
        if isinstance(value, bool):
            raise TypeError
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{field} must be {kind} number, got {value!r}") from None
    if not np.isfinite(out) or out < 0 or (positive and out == 0):
        raise InputError(f"{field} must be {kind} number, got {value!r}")
    return out


def _start(n: Any, rng: Any) -> tuple[int, np.random.Generator]:
    """Validate ``n`` and accept a Generator or an integer seed."""
    return check_int(n, "n", 0), np.random.default_rng(rng)


def moons(n: int, rng: np.random.Generator, *, noise: float = 0.05) -> np.ndarray:
    """Two interleaving half circles: two modes that no straight line separates.

    The geometry of sklearn's ``make_moons`` (upper arc (cos t, sin t), lower arc
    (1 - cos t, 1/2 - sin t)), with t ~ U(0, pi) and each arc chosen with probability 1/2, then
    shifted by -(1/2, 1/4) and scaled by 2/sqrt(3): arcs of radius 1.155 centred at
    -/+(0.577, 0.289); standard deviations about (1.0, 0.57). ``noise`` is the standard deviation
    of isotropic Gaussian noise added after scaling.
    """
    n, rng = _start(n, rng)
    noise = check_number(noise, "noise")
    t = rng.uniform(0.0, np.pi, n)
    lower = rng.random(n) < 0.5
    x = np.where(lower, 1.0 - np.cos(t), np.cos(t))
    y = np.where(lower, 0.5 - np.sin(t), np.sin(t))
    points = (np.stack([x, y], axis=1) - MOONS_SHIFT) * MOONS_SCALE
    return points + noise * rng.standard_normal((n, 2))


def eight_gaussians_centres(radius: float = 2.0) -> np.ndarray:
    """The 8 mode centres, at angles k * pi / 4 (k = 0..7) on a circle of ``radius``."""
    angles = np.arange(8) * np.pi / 4
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def eight_gaussians(
    n: int, rng: np.random.Generator, *, radius: float = 2.0, std: float = 0.1
) -> np.ndarray:
    """An equal mixture of 8 isotropic Gaussians on a circle: the classic mode-collapse test.

    Centres at ``radius`` * (cos k pi/4, sin k pi/4); each mode has standard deviation ``std``.
    With the defaults the per-axis standard deviation is about 1.42 (the radius 2 of the
    mode-collapse literature is kept rather than rescaled to 1).
    """
    n, rng = _start(n, rng)
    radius = check_number(radius, "radius", positive=True)
    std = check_number(std, "std")
    mode = rng.integers(8, size=n)
    return eight_gaussians_centres(radius)[mode] + std * rng.standard_normal((n, 2))


def circles(
    n: int,
    rng: np.random.Generator,
    *,
    radius: float = 2.0,
    factor: float = 0.5,
    noise: float = 0.05,
) -> np.ndarray:
    """Two concentric rings: outer ``radius``, inner ``factor * radius``, each with probability 1/2.

    Two modes that are closed curves, one inside the other: a model must keep both radii apart
    while spreading mass round each. Angles are uniform; ``noise`` is isotropic Gaussian noise.
    With the defaults (radii 2 and 1) the per-axis standard deviation is about 1.12.
    """
    n, rng = _start(n, rng)
    radius = check_number(radius, "radius", positive=True)
    factor = check_number(factor, "factor", positive=True)
    if factor >= 1:
        raise InputError(f"factor must be a number in (0, 1) (inner / outer radius), got {factor}")
    noise = check_number(noise, "noise")
    theta = rng.uniform(0.0, 2 * np.pi, n)
    r = np.where(rng.random(n) < 0.5, radius, factor * radius)
    points = r[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return points + noise * rng.standard_normal((n, 2))


def checkerboard(n: int, rng: np.random.Generator, *, cells: int = 4) -> np.ndarray:
    """Uniform on the filled squares of a ``cells`` x ``cells`` checkerboard over [-2, 2]^2.

    Square (i, j) (column i, row j, counted from the bottom-left) is filled when i + j is even;
    points are uniform over the filled squares. Sharp edges and disconnected support make it hard
    for smooth models. Per-axis standard deviation 4 / sqrt(12) = 1.15 for even ``cells``.
    """
    n, rng = _start(n, rng)
    cells = check_int(cells, "cells", 2)
    i, j = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
    filled = np.stack([i.ravel(), j.ravel()], axis=1)[(i + j).ravel() % 2 == 0]
    square = filled[rng.integers(len(filled), size=n)]
    side = 2 * CHECKERBOARD_HALF_WIDTH / cells
    return -CHECKERBOARD_HALF_WIDTH + side * (square + rng.random((n, 2)))


def swiss_roll(n: int, rng: np.random.Generator, *, noise: float = 0.05) -> np.ndarray:
    """The 2-D spiral of sklearn's swiss roll: t (cos t, sin t) / 7, t ~ U(1.5 pi, 4.5 pi).

    This is the (x, z) projection of ``make_swiss_roll``: one and a half turns around the origin,
    radius from 0.67 to 2.02 after the 1/7 scaling. Per-axis standard deviation about 0.97; the
    mean is about (0.29, 0.03) because the spiral is centred, not its mass. ``noise`` is isotropic
    Gaussian noise in output units.
    """
    n, rng = _start(n, rng)
    noise = check_number(noise, "noise")
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    points = SWISS_ROLL_SCALE * t[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    return points + noise * rng.standard_normal((n, 2))


def pinwheel(
    n: int,
    rng: np.random.Generator,
    *,
    arms: int = 5,
    radial_std: float = 0.3,
    tangential_std: float = 0.1,
    rate: float = 0.25,
) -> np.ndarray:
    """Curved arms with rotational symmetry of order ``arms`` (Johnson et al., 2016).

    Each point picks an arm k, draws features f ~ N((1, 0), diag(radial_std^2, tangential_std^2))
    and is rotated by 2 pi k / arms + rate * exp(f_0), so arms bend more the further out they go.
    The standard deviations are in the paper's units (radius about 1); the result is scaled by
    1.4, giving a per-axis standard deviation of about 1.0.
    """
    n, rng = _start(n, rng)
    arms = check_int(arms, "arms", 1)
    radial_std = check_number(radial_std, "radial_std")
    tangential_std = check_number(tangential_std, "tangential_std")
    rate = float(rate)
    if not np.isfinite(rate):
        raise InputError(f"rate must be a finite number, got {rate!r}")
    arm = rng.integers(arms, size=n)
    f = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
    f[:, 0] += 1.0
    angle = 2 * np.pi * arm / arms + rate * np.exp(f[:, 0])
    c, s = np.cos(angle), np.sin(angle)
    points = np.stack([c * f[:, 0] - s * f[:, 1], s * f[:, 0] + c * f[:, 1]], axis=1)
    return PINWHEEL_SCALE * points


def gaussian_params(
    *, mean: Any = None, cov: Any = None, dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve a Gaussian's ``mean`` (d,) and full ``cov`` (d, d) from the user's shorthand.

    ``mean``: a list (default zeros). ``cov``: a (d, d) matrix (list of lists), a list (the
    diagonal) or a scalar variance (times the identity); default the identity. The dimension comes
    from whichever of ``mean``, ``cov`` and ``dim`` fix it (they must agree), else 2.
    Raises a ValueError naming the field when something is inconsistent or not positive definite.
    """
    spd = "cov must be symmetric positive definite"
    sizes: dict[str, int] = {}
    if dim is not None:
        sizes["dim"] = check_int(dim, "dim", 1)
    if mean is not None:
        try:
            mean = np.asarray(mean, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"mean must be a list of numbers, got {mean!r}") from None
        if mean.ndim != 1 or mean.size == 0 or not np.all(np.isfinite(mean)):
            got = mean.tolist()
            raise InputError(f"mean must be a non-empty list of finite numbers, got {got}")
        sizes["mean"] = mean.size
    if cov is not None:
        try:
            cov = np.asarray(cov, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{spd}; got {cov!r}") from None
        if cov.ndim > 2 or (cov.ndim == 2 and cov.shape[0] != cov.shape[1]) or cov.size == 0:
            raise InputError(f"{spd}; got an array of shape {cov.shape}")
        if not np.all(np.isfinite(cov)):
            raise InputError(f"{spd}; got non-finite entries")
        if cov.ndim >= 1:
            sizes["cov"] = cov.shape[0]
    if len(set(sizes.values())) > 1:
        got = ", ".join(f"{k} gives {v}" for k, v in sizes.items())
        raise InputError(f"mean, cov and dim disagree on the dimension ({got}); make them agree")
    d = next(iter(sizes.values()), 2)
    mean = np.zeros(d) if mean is None else mean
    if cov is None:
        cov = np.eye(d)
    elif cov.ndim == 0:
        if cov <= 0:
            raise InputError(f"{spd}; a scalar variance must be > 0, got {float(cov)}")
        cov = float(cov) * np.eye(d)
    elif cov.ndim == 1:
        if np.any(cov <= 0):
            raise InputError(f"{spd}; a diagonal must be > 0, got {cov.tolist()}")
        cov = np.diag(cov)
    else:
        tol = 1e-12 * max(float(np.abs(cov).max()), 1e-300)
        if not np.allclose(cov, cov.T, rtol=1e-9, atol=tol):
            raise InputError(f"{spd}; it is not symmetric")
        cov = (cov + cov.T) / 2
        smallest = float(np.linalg.eigvalsh(cov)[0])
        if smallest <= 0:
            raise InputError(f"{spd}; its smallest eigenvalue is {smallest:.3g}")
    return mean, cov


def gaussian(
    n: int,
    rng: np.random.Generator,
    *,
    mean: Any = None,
    cov: Any = None,
    dim: int | None = None,
) -> np.ndarray:
    """Draws from N(mean, cov) in any dimension: the case where the paper's theory is exact.

    See :func:`gaussian_params` for the accepted forms of ``mean``, ``cov`` and ``dim``.
    No rescaling: the distribution is exactly the one asked for.
    """
    n, rng = _start(n, rng)
    mean, cov = gaussian_params(mean=mean, cov=cov, dim=dim)
    chol = np.linalg.cholesky(cov)
    return mean + rng.standard_normal((n, mean.size)) @ chol.T


def long_tail_weights(modes: int = 10, decay: float = 0.6) -> np.ndarray:
    """The true mode weights of :func:`long_tail`: ``decay^k`` normalised, k = 0..modes-1."""
    modes = check_int(modes, "modes", 2)
    decay = check_number(decay, "decay", positive=True)
    if decay > 1:
        raise InputError(f"decay must be a number in (0, 1] (weight ratio of modes k+1 and k), "
                         f"got {decay}")
    w = decay ** np.arange(modes, dtype=np.float64)
    return w / w.sum()


def long_tail_centres(modes: int = 10, radius: float = 2.0) -> np.ndarray:
    """Mode centres of :func:`long_tail`: ``modes`` points evenly spaced on a circle."""
    angles = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def long_tail(
    n: int,
    rng: np.random.Generator,
    *,
    modes: int = 10,
    decay: float = 0.6,
    radius: float = 2.0,
    std: float = 0.15,
) -> np.ndarray:
    """Isotropic Gaussian modes on a circle with geometrically falling weights: a long tail.

    Mode k (at angle 2 pi k / modes) has weight proportional to ``decay^k``: with the defaults
    the head mode holds 40% of the mass and the last four together under 5%, so a loop that
    loses its tails does so visibly, mode by mode. The true centres and weights are in the
    dataset's ``params`` (``centres``, ``weights``, ``std``), so the tail metrics
    (:mod:`autophagy.metrics.tails`) can count modes against the truth.
    """
    n, rng = _start(n, rng)
    weights = long_tail_weights(modes, decay)
    radius = check_number(radius, "radius", positive=True)
    std = check_number(std, "std", positive=True)
    mode = rng.choice(len(weights), size=n, p=weights)
    return long_tail_centres(len(weights), radius)[mode] + std * rng.standard_normal((n, 2))
