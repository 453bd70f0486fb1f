"""The fine-tuning semantics of the paper's image runs: a warm-up that restarts each generation,
an EMA that restarts from the weights, a budget in epochs of the mixed set, and FID against
the training set."""

from __future__ import annotations

import math

import numpy as np
import torch

import autophagy
from autophagy.data import load_dataset
from autophagy.models.families.flows import NormalizingFlow
from autophagy.models.training.trainer import TrainConfig, Trainer

TINY = dict(transforms=1, hidden_features=(8,), bins=4, batch_size=50, lr=0.01, device="cpu",
            initial_budget=500, budget=200)


def _trainer(**config) -> Trainer:
    trainer = Trainer(lambda: torch.nn.Linear(2, 1), TrainConfig(device="cpu", batch_size=10,
                                                                 **config))
    trainer.reset(torch.Generator().manual_seed(0))
    return trainer


def _lrs(trainer: Trainer, steps: int) -> list[float]:
    seen = []
    loss = lambda m, x, g: m(x).pow(2).mean()  # noqa: E731
    for _ in range(steps):
        trainer.train(torch.randn(40, 2), 10, torch.Generator().manual_seed(1), loss)
        seen.append(trainer.optimizer.param_groups[0]["lr"])
    return seen


def test_the_warmup_ramp_restarts_at_every_fit_only_when_asked():
    # warm-up over 30 samples = 3 steps of 10; each fit is one step
    carried = _lrs(_trainer(lr=0.3, warmup=30), 4)
    restarted = _lrs(_trainer(lr=0.3, warmup=30, restart_warmup=True), 4)
    np.testing.assert_allclose(carried, [0.1, 0.2, 0.3, 0.3])
    np.testing.assert_allclose(restarted, [0.1, 0.1, 0.1, 0.1])


def test_reset_ema_restarts_the_average_from_the_weights():
    loss = lambda m, x, g: (m(x) - 1).pow(2).mean()  # noqa: E731
    for reset, expect_equal in ((True, True), (False, False)):
        trainer = _trainer(ema=0.999, reset_ema=reset)
        g = torch.Generator().manual_seed(1)
        trainer.train(torch.randn(40, 2), 400, g, loss)
        trainer.begin_fit()
        same = all(torch.equal(a, b) for a, b in zip(trainer.ema_module.parameters(),
                                                        trainer.module.parameters(), strict=True))
        assert same == expect_equal


def test_budget_epochs_trains_one_epoch_of_each_generations_set():
    model = NormalizingFlow("nsf", budget_epochs=1.0, **TINY)
    x = load_dataset("moons", n_train=300, seed=0).train
    rng = np.random.default_rng(0)
    model.fit(x, rng=rng)
    assert model.last_train_.samples == 500  # generation 0: initial_budget
    model.fit(x, warm_start=True, rng=rng)
    assert model.last_train_.steps == math.ceil(300 / 50)
    model.fit(np.concatenate([x, x]), warm_start=True, rng=rng)  # lambda = 1: twice the set
    assert model.last_train_.steps == math.ceil(600 / 50)


def test_metrics_can_compare_with_the_training_set():
    data = load_dataset("moons", n_train=200, n_test=1000, seed=0)
    common = dict(metrics=["frechet"], n_samples=400)
    test = autophagy.run_loop("gaussian", data, "mixed:0", 0, seed=0, **common)
    train = autophagy.run_loop("gaussian", data, "mixed:0", 0, seed=0, compare_to="train",
                               **common)
    # the Gaussian fitted to the training set is closer, in Frechet distance, to that set
    assert train.value.iloc[0] < test.value.iloc[0]


def test_reset_optimizer_gives_each_fit_fresh_adam_moments():
    loss = lambda m, x, g: (m(x) - 1).pow(2).mean()  # noqa: E731
    for reset in (True, False):
        trainer = _trainer(reset_optimizer=reset)
        g = torch.Generator().manual_seed(1)
        trainer.train(torch.randn(40, 2), 100, g, loss)
        moments = [s["exp_avg"].clone() for s in trainer.optimizer.state.values()]
        trainer.begin_fit()
        assert (len(trainer.optimizer.state) == 0) == reset
        trainer.train(torch.randn(40, 2), 10, g, loss)  # one step: step 1 again when reset
        steps = [float(s["step"]) for s in trainer.optimizer.state.values()]
        assert steps == ([1.0, 1.0] if reset else [11.0, 11.0]) and len(moments) == 2
