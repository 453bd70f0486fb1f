"""Property: any config, however wrong, is accepted or refused in one line naming a field.

Hypothesis draws configs field by field from a small valid one: wrong types, numbers out of range
(negative, NaN, infinite, 10**30), unknown names, nested junk, long lists, unicode. Each goes
through ``autophagy run --config`` itself, with ``--out`` an existing run directory: a config that
passes every check then stops at ``--out`` (one line, exit 2) before anything is trained, so
every draw must end in exit 2 and exactly one line ``error: <field>: ...``, never a traceback.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.cli.terminal import one_line

runner = CliRunner()

BASE = {
    "name": "fuzz", "seed": [0],
    "data": {"name": "eight_gaussians", "n_train": 40, "n_test": 30},
    "model": {"name": "gmm", "options": {"n_components": 2}},
    "loop": {"policies": {"mixed": {"lambda": [0.5]}}, "generations": 1},
    "eval": {"metrics": ["w2"], "n_samples": 30, "verdict_metric": "w2"},
    "run": {"executor": "inline"},
}
FIELDS = [
    "name", "description", "seed", "data", "data.name", "data.n_train", "data.n_test",
    "data.n_pool", "data.seed", "data.path", "data.options", "data.options.std", "model",
    "model.name", "model.options", "model.options.n_components", "model.budget",
    "model.initial_budget", "model.init_checkpoint", "loop", "loop.policies",
    "loop.policies.mixed", "loop.policies.mixed.lambda", "loop.policies.curated", "loop.lambda",
    "loop.policy", "loop.fraction", "loop.generations", "loop.warm_start", "loop.temperature",
    "loop.self_guidance", "eval", "eval.metrics", "eval.n_samples", "eval.temperature",
    "eval.compare_to", "eval.verdict_metric", "eval.features", "eval.inception", "run",
    "run.workers", "run.checkpoints", "run.batch", "run.tracker", "sweep", "sweep.data.n_train",
    "sweep.model.options.n_components", "sweep.seed", "sweep.loop.temperature",
]
NAMES = ["moons", "gmm", "kde", "gaussian", "mixed", "fully_synthetic", "accumulate", "w2",
         "nll", "test", "train", "all", "last", "pixels", "inline", "processes", "none"]

words = st.text(min_size=0, max_size=12)  # any unicode but surrogates
numbers = st.one_of(
    st.integers(-3, 300), st.sampled_from([0, -1, 10**13, 10**30, -(10**30), 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, words, st.sampled_from(NAMES))
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(words, st.sampled_from(NAMES)), inner,
                                            max_size=3)),
    max_leaves=8,
)
plausible = st.one_of(st.integers(1, 60), st.floats(0.05, 2.0), st.sampled_from(NAMES),
                      st.lists(st.integers(0, 3), min_size=1, max_size=3), st.booleans())
values = st.one_of(plausible, plausible, junk,
                   st.lists(st.integers(0, 3), min_size=200, max_size=600))  # long lists
SECTION_NAMES = ["data", "model", "loop", "eval", "run", "model.options", ""]
paths = st.one_of(st.sampled_from(FIELDS), st.sampled_from(FIELDS),  # known fields, and unknown:
                  st.builds(lambda f, w: f"{f}.{w}" if f and w else w,
                            st.sampled_from(SECTION_NAMES), words))
edits = st.lists(st.tuples(paths, values), min_size=1, max_size=3)

SECTIONS = ("--out", "--config", "name", "description", "seed", "data", "model", "loop", "eval",
            "run", "sweep", "config")
SEEN: dict[str, int] = {"accepted": 0, "refused": 0}


def _set(data: dict, path: str, value) -> None:
    node, parts = data, path.split(".") if path else [""]
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(edits=edits)
def test_every_drawn_config_validates_or_is_refused_in_one_line(edits, tmp_path_factory):
    folder: Path = tmp_path_factory.mktemp("fuzz")
    (folder / "run").mkdir()
    (folder / "run" / "x").write_text("an existing run")  # a valid config stops at --out
    config = copy.deepcopy(BASE)
    for path, value in edits:
        _set(config, path, value)
    (folder / "c.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    result = runner.invoke(app, ["run", "--config", str(folder / "c.yaml"),
                                 "--out", str(folder / "run"), "--quiet"])
    lines = result.output.strip("\n").splitlines()
    assert result.exit_code == 2 and len(lines) == 1, (edits, result.output, result.exception)
    # names a field: a section of the config, or the unknown name that was drawn (escaped)
    fields = (*SECTIONS, *(one_line(path.split(".")[0]) for path, _ in edits))
    assert lines[0].startswith(tuple(f"error: {f}" for f in fields)), (edits, lines[0])
    assert ": " in lines[0][len("error: "):], lines[0]
    SEEN["accepted" if lines[0].startswith("error: --out:") else "refused"] += 1
