"""The shared torch trainer and the protocol every neural family follows (tiny models, CPU)."""

import numpy as np
import pytest
import torch
from torch import nn

import autophagy
from autophagy.models import base, build_model
from autophagy.models.training.trainer import (
    DivergedError,
    MinibatchOrder,
    TrainConfig,
    Trainer,
    resolve_device,
    torch_generator,
)

TINY_NET = {"hidden_features": [16, 16], "time_features": 8}
TRAIN = {"device": "cpu", "batch_size": 64, "budget": 64 * 4, "initial_budget": 64 * 10}
FAMILIES = {
    "nsf": {"transforms": 1, "hidden_features": [16, 16], "bins": 4},
    "maf": {"transforms": 1, "hidden_features": [16, 16]},
    "cfm": {**TINY_NET, "steps": 4},
    "otcfm": {**TINY_NET, "steps": 4},
    "ddpm": {**TINY_NET, "timesteps": 50},
    "edm": {**TINY_NET, "steps": 4},
}

torch.set_num_threads(1)  # tiny models: threads only add overhead (and contention)


def tiny(name, **options):
    return build_model(name, {**FAMILIES[name], **TRAIN, **options})


def blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)) * [0.5, 2.0] + [1.0, -3.0]


def params(model):
    return [p.detach().clone() for p in model.trainer_.module.parameters()]


def regression_trainer(**config):
    return Trainer(lambda: nn.Linear(2, 1), TrainConfig(device="cpu", batch_size=32, **config))


def linear_loss(module, batch, generator):
    return (module(batch) - batch.sum(1, keepdim=True)).pow(2).mean()


def test_trainer_loss_decreases_on_a_linear_regression():
    trainer = regression_trainer(lr=1e-2)
    g = torch.Generator().manual_seed(0)
    trainer.reset(g)
    result = trainer.train(torch.randn(256, 2, generator=g), 32 * 300, g, linear_loss)
    assert result.steps == 300 and result.samples == 32 * 300
    assert result.losses[-10:].mean() < 0.01 * result.losses[:10].mean()


def test_trainer_resume_from_state_dict_is_bit_identical():
    data = torch.randn(100, 2, generator=torch.Generator().manual_seed(1))
    a = regression_trainer(ema=0.9, warmup=500)
    a.reset(torch.Generator().manual_seed(0))
    a.train(data, 320, torch.Generator().manual_seed(2), linear_loss)
    b = regression_trainer(ema=0.9, warmup=500)
    b.load_state_dict(a.state_dict())
    ra = a.train(data, 320, torch.Generator().manual_seed(3), linear_loss)
    rb = b.train(data, 320, torch.Generator().manual_seed(3), linear_loss)
    np.testing.assert_array_equal(ra.losses, rb.losses)
    for pa, pb in zip(a.eval_module.parameters(), b.eval_module.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert a.step == b.step == 20


@pytest.mark.parametrize(("n", "batch_size"), [(500, 256), (500, 128), (512, 128), (10, 3),
                                                (7, 7), (1, 1)])
def test_minibatches_are_the_permutations_one_after_another(n, batch_size):
    # epoch by epoch: the minibatches laid end to end are permutations of range(n) laid end to
    # end, drawn from the generator as a fresh one would draw them (nothing else draws here)
    order = MinibatchOrder(n, batch_size, torch.Generator().manual_seed(n), "cpu")
    walked = torch.cat([order.next() for _ in range(300)])
    g = torch.Generator().manual_seed(n)
    perms = torch.cat([torch.randperm(n, generator=g) for _ in range(len(walked) // n + 1)])
    assert torch.equal(walked, perms[: len(walked)])


def test_minibatches_draw_their_permutations_when_the_first_version_did():
    # the first MinibatchOrder concatenated its queue at every draw (a copy growing each step);
    # the same draws at the same steps keep every trained model's numbers: this is that class
    class Concatenating:
        def __init__(self, n, batch_size, generator):
            self.n, self.bs, self.g = n, batch_size, generator
            self.perm, self.pos = torch.randperm(n, generator=generator), 0

        def next(self):
            if self.pos + self.bs > self.n:
                fresh = torch.randperm(self.n, generator=self.g)
                self.perm, self.pos = torch.cat([self.perm[self.pos :], fresh]), 0
            self.pos += self.bs
            return self.perm[self.pos - self.bs : self.pos]

    for n, batch_size in [(500, 256), (500, 128), (10, 3), (7, 7)]:
        g, g_ref = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        order, reference = MinibatchOrder(n, batch_size, g, "cpu"), Concatenating(n, batch_size,
                                                                                    g_ref)
        for _ in range(200):  # with other draws in between, as a loss's noise
            assert torch.equal(order.next(), reference.next())
            assert torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=g_ref))


def test_trainer_warmup_is_linear_in_samples_seen():
    trainer = regression_trainer(lr=1.0, warmup=128)
    assert [trainer.lr_at(s) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_trainer_ema_is_the_exponential_average_of_the_weights():
    trainer = regression_trainer(ema=0.5)
    trainer.reset(torch.Generator().manual_seed(0))
    w0 = trainer.module.weight.detach().clone()
    trainer.train(torch.randn(32, 2), 32, torch.Generator().manual_seed(1), linear_loss)
    w1 = trainer.module.weight.detach()
    torch.testing.assert_close(trainer.eval_module.weight, 0.5 * w0 + 0.5 * w1)


def test_trainer_huge_loss_raises_diverged_error_the_loop_catches():
    trainer = regression_trainer(max_loss=1e-6)
    trainer.reset(torch.Generator().manual_seed(0))
    with pytest.raises(base.DivergedError, match="diverged at step 0"):
        trainer.train(torch.randn(32, 2), 32, torch.Generator().manual_seed(0), linear_loss)
    assert issubclass(DivergedError, base.DivergedError)


def test_config_and_device_errors_name_the_argument():
    with pytest.raises(ValueError, match="ema must be a decay"):
        TrainConfig(ema=1.0)
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        torch_generator(0)


@pytest.mark.parametrize("name", FAMILIES)
def test_sampling_is_deterministic_under_a_seed(name):
    model = tiny(name).fit(blobs(), rng=np.random.default_rng(0))
    a = model.sample(50, rng=np.random.default_rng(7))
    b = model.sample(50, rng=np.random.default_rng(7))
    c = model.sample(50, rng=np.random.default_rng(8))
    assert a.shape == (50, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert model.sample(0, rng=np.random.default_rng(7)).shape == (0, 2)
    refit = tiny(name).fit(blobs(), rng=np.random.default_rng(0))
    np.testing.assert_array_equal(refit.sample(50, rng=np.random.default_rng(7)), a)


@pytest.mark.parametrize("name", FAMILIES)
def test_warm_start_continues_weights_and_optimizer_state(name):
    x = blobs()
    model = tiny(name).fit(x, rng=np.random.default_rng(0))
    assert model.trainer_.step == 10
    before = params(model)
    model.fit(x, warm_start=True, budget=0, rng=np.random.default_rng(1))  # zero steps
    for p, q in zip(before, params(model), strict=True):
        assert torch.equal(p, q)
    model.fit(x, warm_start=True, rng=np.random.default_rng(1))
    adam = model.trainer_.optimizer.state_dict()["state"]
    assert model.trainer_.step == 14 and int(adam[0]["step"]) == 14
    model.fit(x, warm_start=False, budget=0, rng=np.random.default_rng(2))  # fresh weights
    assert model.trainer_.step == 0 and not model.trainer_.optimizer.state_dict()["state"]
    assert any(not torch.equal(p, q) for p, q in zip(before, params(model), strict=True))


@pytest.mark.parametrize("name", FAMILIES)
def test_state_dict_round_trip_gives_identical_samples_and_training(name):
    x = blobs()
    a = tiny(name, ema=0.9).fit(x, rng=np.random.default_rng(0))
    b = tiny(name, ema=0.9)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(
        a.sample(30, rng=np.random.default_rng(3)), b.sample(30, rng=np.random.default_rng(3))
    )
    a.fit(x[:100], warm_start=True, rng=np.random.default_rng(4))
    b.fit(x[:100], warm_start=True, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a.last_train_.losses, b.last_train_.losses)
    np.testing.assert_array_equal(
        a.sample(30, rng=np.random.default_rng(5)), b.sample(30, rng=np.random.default_rng(5))
    )


def test_standardisation_is_fixed_at_the_first_fit():
    x = blobs()
    model = tiny("cfm").fit(x, rng=np.random.default_rng(0))
    np.testing.assert_allclose(model.shift_, x.mean(0))
    model.fit(0.1 * x, warm_start=False, budget=64, rng=np.random.default_rng(1))
    np.testing.assert_allclose(model.scale_, x.std(0))
    assert model.state_dict()["scale"].tolist() == x.std(0).tolist()


@pytest.mark.parametrize("name", ["nsf", "ddpm"])
def test_nan_in_the_data_or_a_huge_lr_raise_diverged_error(name):
    x = blobs()
    with pytest.raises(base.DivergedError, match="NaN"):
        tiny(name).fit(np.where(np.arange(200)[:, None] == 5, np.nan, x),
                       rng=np.random.default_rng(0))
    with pytest.raises(base.DivergedError):
        tiny(name, lr=1e12, grad_clip=None, initial_budget=64 * 50).fit(
            x * 100, rng=np.random.default_rng(0))


def test_fit_reports_training_steps_to_the_progress_callback():
    events = []
    tiny("cfm").fit(blobs(), rng=np.random.default_rng(0), progress=lambda **e: events.append(e))
    assert events[-1] == {"step": 10, "steps": 10} and len(events) == 10


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_runs_two_generations_of_the_loop(name):
    df = autophagy.run_loop(tiny(name), "moons", "mixed:0.5", generations=2, seed=0, n_samples=200)
    w2 = df[df.metric == "w2"].set_index("generation")["value"]
    assert list(w2.index) == [0, 1, 2] and np.isfinite(w2).all()
    assert ("nll" in set(df.metric)) == (name in ("nsf", "maf"))
