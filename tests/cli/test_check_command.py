"""``autophagy check TARGET`` from the command line: the rules passed, or one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODULE = Path(__file__).stem


class ForgetfulGaussian:
    """A Gaussian whose state_dict forgets the scale: samples after a resume differ."""

    def fit(self, data, *, warm_start=False, budget=None, rng):
        x = np.asarray(data, dtype=float).reshape(len(data), -1)
        self.mean_, self.std_ = x.mean(0), x.std(0)
        return self

    def sample(self, n, *, rng, temperature=1.0):
        return self.mean_ + self.std_ * rng.standard_normal((n, len(self.mean_)))

    def state_dict(self):
        return {"mean": self.mean_}

    def load_state_dict(self, state):
        self.mean_ = np.asarray(state["mean"])
        self.std_ = np.ones_like(self.mean_)


def test_a_builtin_passes_and_lists_its_rules(cli):
    result = cli("check", "gmm", "--option", "n_components=2")
    assert result.exit_code == 0, result.output
    assert "model gmm:" in result.output and "ok  state round-trip" in result.output


def test_a_broken_plugin_fails_in_one_line_naming_the_rule(cli):
    result = cli("check", f"{MODULE}:ForgetfulGaussian")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "ForgetfulGaussian: state round-trip:" in lines[0]


def test_an_option_that_is_not_key_value_is_refused(cli):
    result = cli("check", "gmm", "--option", "n_components")
    assert result.exit_code == 2 and "--option" in result.output
