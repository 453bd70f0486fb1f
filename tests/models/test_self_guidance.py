"""SIMS self-guidance (Alemohammad et al. 2024): the guided network is (1 + w) base - w aux, on
every diffusion and flow-matching family, through their own samplers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autophagy.models.families.gaussian import GaussianMLE
from autophagy.models.families.self_guidance import GuidedModule, SelfGuided
from autophagy.models.registry import build_model

DATA = np.random.default_rng(0).standard_normal((128, 2))
FAST = {"ddpm": {"sampler": "ddim", "steps": 5}, "edm": {"steps": 4}, "cfm": {"steps": 4}}


def tiny(name):
    return build_model(name, {"hidden_features": [16, 16], "device": "cpu",
                              "initial_budget": 512, **FAST[name]})


def test_the_guided_module_pushes_away_from_the_auxiliary_output():
    base, aux = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    x = torch.randn(5, 2)
    out = GuidedModule(base, aux, 1.5)(x)
    torch.testing.assert_close(out, 2.5 * base(x) - 1.5 * aux(x))
    torch.testing.assert_close(GuidedModule(base, base, 3.0)(x), base(x))


@pytest.mark.parametrize("name", ["ddpm", "edm", "cfm"])
def test_an_auxiliary_copy_equal_to_the_base_leaves_the_sampler_unchanged(name):
    """aux_budget = 0: the copy is the base, so (1 + w) f - w f = f at every step."""
    model = SelfGuided(tiny(name), guidance=2.0, aux_budget=0)
    model.fit(DATA, rng=np.random.default_rng(0))
    guided = model.sample(64, rng=np.random.default_rng(1))
    plain = model.base.sample(64, rng=np.random.default_rng(1))
    np.testing.assert_allclose(guided, plain, atol=1e-5)


def test_a_fine_tuned_auxiliary_changes_the_samples_and_the_state_round_trips():
    model = SelfGuided(tiny("ddpm"), guidance=1.0, aux_budget=1024)
    model.fit(DATA, rng=np.random.default_rng(0))
    guided = model.sample(64, rng=np.random.default_rng(1))
    assert not np.allclose(guided, model.base.sample(64, rng=np.random.default_rng(1)))
    again = SelfGuided(tiny("ddpm"), guidance=1.0)
    again.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(again.sample(64, rng=np.random.default_rng(1)), guided)


def test_bad_guidance_or_family_fails_with_a_message():
    with pytest.raises(ValueError, match="self_guidance must be a number >= 0"):
        SelfGuided(tiny("ddpm"), guidance=-1)
    with pytest.raises(ValueError, match="diffusion or flow-matching model"):
        SelfGuided(GaussianMLE(), guidance=1)


def test_loop_self_guidance_runs_from_the_cli_and_is_refused_where_it_cannot_apply(tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    import autophagy
    from autophagy.cli import app

    common = ["--preset", "toy-sims", "--set", "seed=[0]", "--set", "loop.generations=1",
              "--set", "model.initial_budget=2560", "--set", "model.budget=1280",
              "--set", "model.options.steps=5", "--set", "eval.n_samples=200",
              "--set", "run.executor=inline", "-q", "--out", str(tmp_path / "sims")]
    result = CliRunner().invoke(app, ["run", *common])
    assert result.exit_code == 0, result.output
    df = autophagy.load_results(tmp_path / "sims")
    w2 = df[df.metric == "w2"].pivot(index="generation", columns="loop.self_guidance",
                                     values="value")
    assert list(w2.columns) == [0.0, 1.5]
    assert not w2[0.0].equals(w2[1.5])  # guidance changes what the model samples
    refused = CliRunner().invoke(app, ["run", "--preset", "toy-gmm", "--set",
                                       "loop.self_guidance=1", "--out", str(tmp_path / "no")])
    assert refused.exit_code == 2
    assert "loop.self_guidance: self-guidance needs a diffusion or flow-matching" in refused.output
    assert isinstance(w2, pd.DataFrame) and not (tmp_path / "no").exists()
