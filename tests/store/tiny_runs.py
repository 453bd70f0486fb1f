"""The small toy-gmm run the store's tests start through the command line (a helper module, not
a test file): a Gaussian mixture, 120 points, one seed, seconds per run."""

from __future__ import annotations

BOTH = "{mixed: {lambda: [0.5]}, fully_synthetic: {}}"
MIXED = "{mixed: {lambda: [0.5]}}"


def gmm_run(generations: int | None = 2, policies: str = BOTH, *, inline: bool = True) -> list[str]:
    """``autophagy run`` arguments (without ``--out``): ``generations`` None keeps the preset's."""
    args = [
        "--preset", "toy-gmm",
        "--set", "data.n_train=120", "--set", "data.n_test=200", "--set", "seed=[0]",
        "--set", f"loop.policies={policies}",
        "--set", "eval.n_samples=200", "--set", "eval.metrics=[nll, energy]",
        "--set", "eval.verdict_metric=nll", "--set", "model.options.n_components=4",
    ]  # fmt: skip
    if generations is not None:
        args += ["--set", f"loop.generations={generations}"]
    if inline:
        args += ["--set", "run.executor=inline"]
    return [*args, "--quiet"]
