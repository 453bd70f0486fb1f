"""``check_model``: a model family through the loop's own moves on tiny data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from autophagy.data import Dataset
from autophagy.models import (
    has_log_prob,
    sample_at,
    temperature_support,
)
from autophagy.testing.common import (
    PROTOCOL,
    _as_dataset,
    _data_shaped,
    _max_diff,
    _model_factory,
    _rng,
    _Rules,
    _same,
    _state_bytes,
    _statefile,
)


def check_model(
    model: Any,
    dataset: Dataset | str | np.ndarray | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    n: int = 32,
    budget: int = 64,
    seed: int = 0,
) -> list[str]:
    """Check a model family against what the loop relies on; return the rules passed.

    ``model`` is a class (built as ``model(**options)``), a registered name or ``module:Class``
    (built as the loop builds it), or an unfitted instance (deep-copied for every fresh model
    a rule needs; never changed). ``dataset`` (default: 128 moons) is what it is fitted on,
    with ``budget`` samples seen per fit; ``n`` samples are drawn per call.

    Rules, in order (each one sentence of why):

    - *constructible*: the loop (and every resume) builds the model from its config options.
    - *protocol*: the loop calls ``fit``, ``sample``, ``state_dict`` and ``load_state_dict``.
    - *fit returns self*: the scikit-learn convention ``model.fit(x).sample(n)`` the API and
      docs use.
    - *fit leaves data untouched*: the loop reuses the real data every generation.
    - *sample is an array*: the loop takes ``np.asarray`` of it (numpy or CPU tensor).
    - *sample shape*: ``(n, *data shape)`` (or flat ``(n, prod(shape))``, which the loop
      reshapes), so samples mix with the real data.
    - *sample dtype*: floating point, as the data it is concatenated with (integer token ids
      on a text dataset).
    - *sample finite*: a NaN is a diverged generation.
    - *sample(0)*: ``mixed`` at lambda = 0 asks for no samples; it gets an empty array of the
      right shape.
    - *sample determinism*: one seed gives the same numbers; the loop draws only from the rng
      it passes.
    - *sample uses its rng*: two seeds give different samples (a model drawing from a global
      RNG, or a fixed seed of its own, makes the cells' seeds meaningless; a model that draws
      nothing, a point mass, fails it on purpose).
    - *fit determinism*: two fresh models fitted with the same rng sample the same.
    - *warm fit*: ``fit(warm_start=True)`` on the data plus its own samples (generation 1)
      runs and returns self.
    - *state is data*: ``state_dict()`` goes through the checkpoint format (no code, no
      objects), or nothing can be saved.
    - *state round-trip*: a fresh model that loads that checkpoint samples bit for bit as the
      original, so ``autophagy resume`` continues the same run.
    - *warm start after load*: the next warm-started fit (generation 2) of the loaded model
      continues bit for bit as the original's (optimizer moments, step counts, EMA are state).
    - *temperature*: a model that samples at a temperature declares it validly and gives
      finite, deterministic samples of the same shape at tau = 0.5.
    - *log_prob* (if present): one finite float per row, for the held-out NLL.
    """
    data = _as_dataset(dataset, seed)
    make, subject = _model_factory(model, options)
    rules = _Rules(subject)
    x = data.train.copy()  # a model that writes into its data must not spoil the caller's
    shape = tuple(x.shape[1:])

    with rules.rule("constructible"):
        m = make()
    with rules.rule("protocol"):
        missing = [name for name in PROTOCOL if not callable(getattr(m, name, None))]
        if missing:
            rules.fail("protocol", f"no method {', '.join(missing)}; the loop calls "
                                   f"{', '.join(PROTOCOL)}")
    original = x.copy()
    with rules.rule("fit returns self"):
        out = m.fit(x, warm_start=False, budget=budget, rng=_rng(seed, 0))
        if out is not m:
            rules.fail("fit returns self", f"fit returned {type(out).__name__}, not the model; "
                                           "end fit with 'return self'")
    with rules.rule("fit leaves data untouched"):
        if not _same(x, original):
            rules.fail("fit leaves data untouched",
                       f"fit changed its input in place ({_max_diff(x, original)}); the loop "
                       "reuses the real data every generation: work on a copy")
    with rules.rule("sample is an array"):
        first = np.asarray(sample_at(m, n, rng=_rng(seed, 1)))
    s = first
    with rules.rule("sample shape"):
        flat = (n, int(np.prod(shape)))
        if s.shape != (n, *shape) and s.shape != flat:
            alt = f" (or flat {flat})" if len(shape) > 1 else ""
            rules.fail("sample shape", f"sample({n}) gave shape {s.shape}; the loop needs "
                                       f"{(n, *shape)}{alt}")
    with rules.rule("sample dtype"):
        if data.kind == "text":  # token ids: integers, as the real blocks
            if not np.issubdtype(s.dtype, np.integer):
                rules.fail("sample dtype", f"sample gave dtype {s.dtype}; text samples are "
                                           "integer token ids, as the real blocks")
        elif not np.issubdtype(s.dtype, np.floating):
            rules.fail("sample dtype", f"sample gave dtype {s.dtype}; the loop mixes samples "
                                       "with float data: return floats")
    with rules.rule("sample finite"):
        if not np.all(np.isfinite(s)):
            rules.fail("sample finite", f"{int(np.sum(~np.isfinite(s)))} of {s.size} values "
                                        "are NaN or inf after a plain fit")
    with rules.rule("sample(0)"):
        empty = np.asarray(sample_at(m, 0, rng=_rng(seed, 1)))
        if empty.shape not in ((0, *shape), (0, flat[1])):
            rules.fail("sample(0)", f"sample(0) gave shape {empty.shape}, not {(0, *shape)}; "
                                    "mixed at lambda 0 asks for no samples")
    with rules.rule("sample determinism"):
        again = np.asarray(sample_at(m, n, rng=_rng(seed, 1)))
        if not _same(first, again):
            rules.fail("sample determinism", f"two calls with the same rng seed differ "
                                             f"({_max_diff(first, again)}); draw only from the "
                                             "rng passed in, and leave the model unchanged")
    with rules.rule("sample uses its rng"):
        other = np.asarray(sample_at(m, n, rng=_rng(seed, 2)))
        if _same(first, other):
            rules.fail("sample uses its rng", "two different rng seeds give the same samples; "
                                              "draw from the rng passed in")
    with rules.rule("fit determinism"):
        twin = make()
        twin.fit(x.copy(), warm_start=False, budget=budget, rng=_rng(seed, 0))
        theirs = np.asarray(sample_at(twin, n, rng=_rng(seed, 1)))
        if not _same(first, theirs):
            rules.fail("fit determinism", f"two fresh models fitted with the same rng sample "
                                          f"differently ({_max_diff(first, theirs)}); take all "
                                          "randomness from the rng passed to fit")

    with rules.rule("warm fit"):  # generation 1 of the loop: its own samples mixed in
        def next_set(k: int) -> np.ndarray:
            synth = _data_shaped(sample_at(m, len(x), rng=_rng(seed, k)), data)
            return np.concatenate([x, synth.astype(x.dtype, copy=False)])

        out = m.fit(next_set(3), warm_start=True, budget=budget, rng=_rng(seed, 4))
        if out is not m:
            rules.fail("fit returns self", f"a warm-started fit returned {type(out).__name__}")
    with rules.rule("state is data"):
        state = m.state_dict()
        if not isinstance(state, dict):
            rules.fail("state is data", f"state_dict returned {type(state).__name__}, not a dict")
        blob = _state_bytes(rules, "state is data", state, "state_dict()")
    with rules.rule("state round-trip"):
        fresh = make()
        fresh.load_state_dict(_statefile().loads(blob))
        a = np.asarray(sample_at(m, n, rng=_rng(seed, 5)))
        b = np.asarray(sample_at(fresh, n, rng=_rng(seed, 5)))
        if not _same(a, b):
            rules.fail("state round-trip", f"sample after load_state_dict differs from the "
                                           f"original ({_max_diff(a, b)}); state_dict "
                                           "must hold everything sample uses")
    with rules.rule("warm start after load"):  # generation 2, the original and a resumed one
        train = next_set(6)
        m.fit(train.copy(), warm_start=True, budget=budget, rng=_rng(seed, 7))
        fresh.fit(train.copy(), warm_start=True, budget=budget, rng=_rng(seed, 7))
        a = np.asarray(sample_at(m, n, rng=_rng(seed, 8)))
        b = np.asarray(sample_at(fresh, n, rng=_rng(seed, 8)))
        if not _same(a, b):
            rules.fail("warm start after load",
                       f"a warm-started fit after load_state_dict continues differently from the "
                       f"original ({_max_diff(a, b)}); training state (optimizer, step count, "
                       "EMA) belongs in state_dict")
    _check_temperature(rules, m, n, seed)
    if has_log_prob(m):
        with rules.rule("log_prob"):
            k = min(len(data.test), n)
            lp = np.asarray(m.log_prob(data.test[:k]))
            if lp.shape != (k,) or not np.issubdtype(lp.dtype, np.floating):
                rules.fail("log_prob", f"log_prob of {k} rows gave {lp.dtype} of shape "
                                       f"{lp.shape}; the NLL metric needs ({k},) floats")
            if not np.all(np.isfinite(lp)):
                rules.fail("log_prob", f"{int(np.sum(~np.isfinite(lp)))} of {k} held-out "
                                       "log-densities are not finite")
    return rules.passed


def _check_temperature(rules: _Rules, m: Any, n: int, seed: int) -> None:
    with rules.rule("temperature"):
        try:
            support = temperature_support(m)
        except ValueError as err:
            rules.fail("temperature", str(err))
        if support == "none":
            return
        hot = np.asarray(m.sample(n, rng=_rng(seed, 6), temperature=0.5))
        ref = np.asarray(sample_at(m, n, rng=_rng(seed, 6)))
        if hot.shape != ref.shape or not np.all(np.isfinite(hot)):
            rules.fail("temperature", f"sample at temperature 0.5 gave shape {hot.shape} "
                                      f"(finite: {bool(np.all(np.isfinite(hot)))}), at 1 "
                                      f"{ref.shape}")
        again = np.asarray(m.sample(n, rng=_rng(seed, 6), temperature=0.5))
        if not _same(hot, again):
            rules.fail("temperature", "two calls at temperature 0.5 with the same rng seed "
                                      f"differ ({_max_diff(hot, again)})")
