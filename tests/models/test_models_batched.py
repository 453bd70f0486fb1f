"""Cells trained as one stacked batch get the bits they get alone, for every family on points
(nsf, maf, cfm, otcfm, ddpm, edm): weights, AdamW moments, EMA, step and losses, through the
model API, the loop (a diverging cell stops alone) and resume after an interruption inside a
batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import autophagy
from autophagy.cli import app
from autophagy.data import load_dataset
from autophagy.loop import CellRun, EvalSettings, LoopSettings, run_cells
from autophagy.models.base import DivergedError
from autophagy.models.families.diffusion import DDPM, EDM
from autophagy.models.families.flow_matching import FlowMatching
from autophagy.models.families.flows import NormalizingFlow
from autophagy.models.families.neural import fit_batched
from autophagy.models.training.batched import stack_linear
from autophagy.policies import parse_policy
from autophagy.store import CellStore

TINY = dict(transforms=2, hidden_features=(16, 16), bins=4, batch_size=64, lr=0.003,
            device="cpu", initial_budget=64 * 12, budget=64 * 4, grad_clip=0.5, ema=0.9)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _flat(model) -> torch.Tensor:
    out = []

    def walk(x):
        if isinstance(x, dict):
            for _, v in sorted(x.items(), key=lambda kv: str(kv[0])):
                walk(v)
        elif isinstance(x, list | tuple):
            for v in x:
                walk(v)
        elif isinstance(x, torch.Tensor | np.ndarray):
            out.append(torch.as_tensor(x).flatten().double())
        elif isinstance(x, int | float):
            out.append(torch.tensor([float(x)], dtype=torch.float64))

    walk(model.state_dict())
    return torch.cat(out)


NETWORK = dict(hidden_features=(16, 16), time_features=8, batch_size=64, lr=0.003,
               device="cpu", initial_budget=64 * 12, budget=64 * 4, grad_clip=0.5, ema=0.9,
               weight_decay=0.01)
FAMILIES = {  # every family on points
    "nsf": lambda: NormalizingFlow("nsf", **TINY),
    "maf": lambda: NormalizingFlow("maf", **TINY),
    "cfm": lambda: FlowMatching("independent", sigma=0.1, **NETWORK),
    "otcfm": lambda: FlowMatching("ot", **NETWORK),
    "ddpm": lambda: DDPM(timesteps=100, **NETWORK),
    "edm": lambda: EDM(**NETWORK),
}


def _alone_and_batched(makers):
    """Models trained cold then warm, each alone and all as one batch."""
    datas = [load_dataset("moons", n_train=n, seed=s).train for s, n in [(0, 200), (1, 300),
                                                                          (2, 250)]]
    alone = [make() for make in makers]
    for s, (model, data) in enumerate(zip(alone, datas, strict=True)):
        rng = np.random.default_rng(s)
        model.fit(data, rng=rng)
        model.fit(data[:150], warm_start=True, rng=rng)
    batch = [make() for make in makers]
    rngs = [np.random.default_rng(s) for s in range(len(makers))]
    assert fit_batched(batch, datas, warm_start=False, budgets=[None] * 3, rngs=rngs) == [None] * 3
    warm = [d[:150] for d in datas]
    assert fit_batched(batch, warm, warm_start=True, budgets=[None] * 3, rngs=rngs) == [None] * 3
    return alone, batch


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_batch_trains_every_model_to_the_bits_it_gets_alone(family):
    # weights, AdamW moments, EMA, step and every step's loss, cold then warm; the loss's noise
    # (and OT-CFM's pairing) is drawn per cell, in the order the model's own loss draws it
    assert FAMILIES[family]().batchable
    alone, batch = _alone_and_batched([FAMILIES[family]] * 3)
    for a, b in zip(alone, batch, strict=True):
        assert torch.equal(_flat(a), _flat(b))
        np.testing.assert_array_equal(a.last_train_.losses, b.last_train_.losses)
    # trained stacked (one module of StackedLinear layers), not through the vmap fallback
    assert stack_linear([m.trainer_.module for m in batch]) is not None
    assert hasattr(batch[0], "_loss_stacked")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_stacked_loss_and_gradients_are_each_cells_alone(family):
    """One step's K losses of the stacked module on (K, n, ...) batches, and the gradients of
    its stacked weights, against each cell's own module, loss and autograd: to the bit."""
    models = [FAMILIES[family]() for _ in range(3)]
    datas = [load_dataset("moons", n_train=n, seed=s).train for s, n in [(0, 64), (1, 64),
                                                                          (2, 64)]]
    for s, (model, data) in enumerate(zip(models, datas, strict=True)):
        model.fit(data, budget=0, rng=np.random.default_rng(s))  # fresh weights, no step
    modules = [m.trainer_.module for m in models]
    stacked = stack_linear(modules)
    batch = torch.stack([torch.as_tensor(d, dtype=torch.float32) for d in datas])
    draw = getattr(models[0], "_draw", None)
    gens = [torch.Generator().manual_seed(10 + j) for j in range(3)]
    draws = [draw(b, g) if draw else {} for b, g in zip(batch, gens, strict=True)]
    drawn = {key: torch.stack([d[key] for d in draws]) for key in draws[0]}
    losses = models[0]._loss_stacked(stacked, batch, drawn if draw else None)
    weights = dict(stacked.named_parameters())
    grads = torch.autograd.grad(losses.sum(), list(weights.values()))
    for j, (model, module) in enumerate(zip(models, modules, strict=True)):
        if draw:
            alone = model._loss_given(module, batch[j], draws[j])
        else:
            alone = model._loss(module, batch[j], gens[j])
        own = dict(module.named_parameters())
        assert torch.equal(losses[j], alone)
        for g, (name, grad) in zip(torch.autograd.grad(alone, list(own.values())),
                                   zip(weights, grads, strict=True), strict=True):
            assert torch.equal(grad[j], g), name


def test_models_of_one_class_with_other_settings_train_alone():
    # cfm and otcfm are one class; one loss for both would pair cfm's batches by OT
    makers = [FAMILIES["cfm"], FAMILIES["otcfm"], FAMILIES["cfm"]]
    alone, batch = _alone_and_batched(makers)
    for a, b in zip(alone, batch, strict=True):
        assert torch.equal(_flat(a), _flat(b))


def test_image_networks_are_not_batched():
    # vmap runs over diffusers' UNet2DModel, but slower than one cell after another on CPU and
    # not to the bits (grouped convolutions, GroupNorm): images train alone
    for model in (DDPM(network="unet", device="cpu"), EDM(network="songunet", device="cpu"),
                  FlowMatching(network=lambda shape: torch.nn.Identity(), device="cpu")):
        assert not model.batchable


def test_a_diverging_model_stops_alone_and_the_others_are_unchanged():
    datas = [load_dataset("moons", n_train=200, seed=s).train for s in range(3)]
    models = [NormalizingFlow("nsf", **TINY) for _ in datas]
    rngs = [np.random.default_rng(s) for s in range(3)]
    fit_batched(models, datas, warm_start=False, budgets=[None] * 3, rngs=rngs)
    reference = [NormalizingFlow("nsf", **TINY) for _ in datas]
    ref_rngs = [np.random.default_rng(s) for s in range(3)]
    fit_batched(reference, datas, warm_start=False, budgets=[None] * 3, rngs=ref_rngs)
    warm = [datas[0], datas[1] * 1e7, datas[2]]  # far outside the fixed scaler: the loss explodes
    errors = fit_batched(models, warm, warm_start=True, budgets=[None] * 3, rngs=rngs)
    assert errors[0] is None and errors[2] is None and isinstance(errors[1], DivergedError)
    for i in (0, 2):
        reference[i].fit(warm[i], warm_start=True, rng=ref_rngs[i])
        assert torch.equal(_flat(models[i]), _flat(reference[i]))


def _runs(stores=None, model_cls=NormalizingFlow):
    runs = []
    for i, policy in enumerate(["mixed:0.5", "fully_synthetic", "mixed:1"]):
        data = load_dataset("eight_gaussians", n_train=200, n_test=300, seed=i)
        runs.append(CellRun(model_cls("nsf", **TINY), data, parse_policy(policy),
                            LoopSettings(3, seed=i), EvalSettings(metrics=("w2", "nll"),
                                                                  n_samples=200),
                            store=None if stores is None else stores[i]))
    return runs


class _StopAt(CellStore):
    """A cell store whose save of one generation is interrupted (Ctrl-C in the middle)."""

    def __init__(self, root, generation):
        super().__init__(root)
        self.stop = generation

    def save(self, generation, payload, rows):
        if generation == self.stop:
            raise KeyboardInterrupt
        super().save(generation, payload, rows)


def test_resume_after_an_interruption_inside_a_batch_is_exact(tmp_path):
    whole = run_cells(_runs())
    stores = [CellStore(tmp_path / "a"), _StopAt(tmp_path / "b", 2), CellStore(tmp_path / "c")]
    with pytest.raises(KeyboardInterrupt):
        run_cells(_runs(stores))
    assert stores[0].generations_saved() == [0, 1, 2]  # cells now stand at different generations
    assert stores[1].generations_saved() == [0, 1]
    assert stores[2].generations_saved() == [0, 1]
    resumed = run_cells(_runs([CellStore(tmp_path / name) for name in "abc"]))
    for a, b in zip(whole, resumed, strict=True):
        assert b.status == "done"
        pd.testing.assert_frame_equal(a.metrics, b.metrics)
        assert torch.equal(_flat(a.model), _flat(b.model))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_loop_gives_each_cell_its_metrics_alone_inside_a_batch(family):
    # three cells of one family (other policies, seeds and data) through the loop in lockstep,
    # fits batched, against each cell run alone: the same metrics table, to the bit
    def runs():
        out = []
        for i, policy in enumerate(["mixed:0.5", "fully_synthetic", "mixed:1"]):
            data = load_dataset("moons", n_train=150, n_test=200, seed=i)
            out.append(CellRun(FAMILIES[family](), data, parse_policy(policy),
                               LoopSettings(2, seed=i),
                               EvalSettings(metrics=("w2",), n_samples=150)))
        return out

    together = run_cells(runs())
    for a, b in zip([run_cells([r])[0] for r in runs()], together, strict=True):
        assert b.status == "done"
        pd.testing.assert_frame_equal(a.metrics, b.metrics)
        assert torch.equal(_flat(a.model), _flat(b.model))


def test_run_batch_gives_the_numbers_of_cells_run_alone(tmp_path):
    common = ["--preset", "toy-flow", "--set", "seed=[0, 1]", "--set", "loop.generations=2",
              "--set", "model.initial_budget=1280", "--set", "model.budget=640",
              "--set", "data.n_train=200", "--set", "eval.n_samples=200",
              "--set", "eval.metrics=[w2, nll]", "--set", "eval.verdict_metric=nll",
              "--set", "run.executor=inline", "-q"]
    for name, batch in (("alone", 1), ("batched", 8)):
        result = CliRunner().invoke(app, ["run", *common, "--set", f"run.batch={batch}",
                                          "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    alone = autophagy.load_results(tmp_path / "alone")
    assert alone.cell.nunique() == 8
    pd.testing.assert_frame_equal(alone, autophagy.load_results(tmp_path / "batched"))


def test_stacked_linear_layers_compute_each_cell_as_alone():
    """StackedLinear (the flows' batched path, no vmap) against each layer alone: outputs and
    the gradients of weights, biases and inputs, to the bit, masked and unmasked."""
    from zuko.nn import MaskedLinear

    from autophagy.models.training.batched import StackedLinear

    g = torch.Generator().manual_seed(0)
    mask = torch.rand(4, 16, generator=g) < 0.6
    for make in (lambda: torch.nn.Linear(16, 4), lambda: torch.nn.Linear(16, 4, bias=False),
                 lambda: MaskedLinear(mask)):
        layers = [make() for _ in range(3)]
        stacked = StackedLinear(layers)
        x = torch.randn(3, 50, 16, generator=g, requires_grad=True)
        out = stacked(x)
        weights = torch.randn(out.shape, generator=g)
        (out * weights).sum().backward()
        for j, layer in enumerate(layers):
            xj = x.detach()[j].clone().requires_grad_(True)
            alone = layer(xj)
            (alone * weights[j]).sum().backward()
            assert torch.equal(out[j], alone)
            assert torch.equal(stacked.weight.grad[j], layer.weight.grad)
            assert torch.equal(x.grad[j], xj.grad)
            if layer.bias is not None:
                assert torch.equal(stacked.bias.grad[j], layer.bias.grad)


def test_flows_and_mlps_stack_and_other_networks_fall_back_to_vmap():
    from autophagy.models.families.flows import build_flow
    from autophagy.models.nets import MLP

    for flow in ("nsf", "maf"):
        flows = [build_flow(flow, 2, 2, [8, 8], 4) for _ in range(3)]
        assert stack_linear(flows) is not None
    assert stack_linear([MLP((2,), hidden_features=(8, 8)) for _ in range(3)]) is not None
    normed = [torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.LayerNorm(4)) for _ in range(2)]
    assert stack_linear(normed) is None  # a parameter outside a linear layer
    masks = [build_flow("nsf", 3, 1, [8], 4) for _ in range(2)]
    masks[1].transform.transforms[0].hyper[0].mask.logical_not_()
    assert stack_linear(masks) is None  # the cells' masks differ
