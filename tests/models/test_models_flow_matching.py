"""Flow matching: couplings, the CFM loss, the ODE solvers and the model."""

import math

import numpy as np
import pytest
import torch

from autophagy.models.families.flow_matching import FlowMatching, cfm_loss, couple, integrate

torch.set_num_threads(1)  # tiny models: threads only add overhead (and contention)


def test_ot_coupling_pairs_with_lower_transport_cost_than_independent():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(128, 2, generator=g)
    x1 = torch.randn(128, 2, generator=g) * 0.3
    cost = {c: (x1p - x0p).pow(2).sum(1).mean().item()
            for c in ("independent", "ot") for x0p, x1p in [couple(x0, x1, c)]}
    assert cost["ot"] < 0.6 * cost["independent"]  # about 2 (1 - 0.3)^2 against 2 + 2 * 0.09
    a, b = couple(x0, x1, "ot")
    assert torch.equal(a, x0)
    assert sorted(map(tuple, b.tolist())) == sorted(map(tuple, x1.tolist()))  # a permutation


def test_cfm_loss_is_zero_for_the_exact_velocity_of_a_translation():
    x0 = torch.randn(64, 2)
    x1 = x0 + torch.tensor([1.0, -2.0])
    loss = cfm_loss(lambda x, t: torch.tensor([1.0, -2.0]).expand_as(x), x0, x1,
                    torch.rand(64), torch.zeros(64, 2))
    assert loss.item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("solver,steps,tol", [("euler", 400, 5e-3), ("heun", 40, 1e-3),
                                               ("dopri5", 1, 1e-4)])
def test_solvers_integrate_a_linear_ode_to_its_closed_form(solver, steps, tol):
    x0 = torch.randn(32, 2, dtype=torch.float64)
    out = integrate(lambda x, t: -x * (1 + t[:, None]), x0, solver=solver, steps=steps)
    torch.testing.assert_close(out, x0 * math.exp(-1.5), atol=tol, rtol=0)


@pytest.mark.parametrize("coupling", ["independent", "ot"])
def test_flow_matching_loss_decreases_and_samples_match_the_data(coupling):
    rng = np.random.default_rng(0)
    x = np.array([[3.0, 0.0], [7.0, 0.0]])[rng.integers(2, size=500)] + rng.normal(
        size=(500, 2)) * [0.2, 1.5]
    model = FlowMatching(coupling, hidden_features=(32, 32), time_features=8, device="cpu",
                         batch_size=128, initial_budget=128 * 200, lr=3e-3)
    model.fit(x, rng=rng)
    losses = model.last_train_.losses
    assert losses[-50:].mean() < 0.8 * losses[:5].mean()  # I-CFM has a high floor
    s = model.sample(4000, rng=np.random.default_rng(1), temperature=1.0)
    np.testing.assert_allclose(s.mean(0), x.mean(0), atol=0.15)
    np.testing.assert_allclose(s.std(0), x.std(0), rtol=0.15)


def test_flow_matching_rejects_unknown_options():
    with pytest.raises(ValueError, match="coupling must be one of"):
        FlowMatching("sinkhorn", device="cpu").fit(np.zeros((4, 2)), rng=np.random.default_rng(0))
