"""The loop's protocol for every torch family: budgets, warm start, scaler, devices, checkpoints.

A neural family (a flow, flow matching, DDPM, EDM) subclasses :class:`NeuralModel` (or
:class:`NetworkModel` when its module is a network ``net(x, c)``) and supplies only its science:
``_make_module(shape)``, a loss ``_loss(module, batch, generator)`` and a sampler ``_sample(module,
n, generator, temperature)`` in model space. Everything the retraining loop of Bertrand et al.
(2024) needs around it lives here, once: training for a budget of samples seen (the paper's
``num_mimg``), fine-tuning warm-started from the previous generation's weights and optimizer state,
a data scaler fixed at the first fit, chunked sampling under a seed, a pretrained generation 0
(``init_checkpoint``), the device and mixed precision, and exact checkpoints.

Shared options are written once: :class:`NeuralModel` (training) and :class:`NetworkModel` (the
network) declare them as keyword arguments, a family's ``__init__`` takes its own arguments plus
``**options`` and passes them up; the config's option check
(:func:`autophagy.signatures.check_options`) follows that chain along the MRO, so every accepted
keyword is known without a list to keep in step.

References:
    | On the Stability of Iterative Retraining of Generative Models on their own Data
    | (Bertrand et al., ICLR 2024) https://arxiv.org/abs/2310.00429
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autophagy.errors import InputError
from autophagy.models.base import probe_points
from autophagy.models.nets import BATCHABLE, NetworkBuilder, build_network, check_network
from autophagy.models.nets.unet import UNet
from autophagy.models.training.trainer import (
    DivergedError,
    TrainConfig,
    Trainer,
    resolve_device,
    torch_generator,
)
from autophagy.models.weights_only import load_weights_only
from autophagy.signatures import ArgumentError
from autophagy.theory.sampling import check_temperature

_TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "max_loss")
"""The constructor arguments that are :class:`TrainConfig`'s, read from it."""


def check_device(device: str) -> torch.device:
    """Resolve ``device`` now, so that a missing GPU stops a config before anything runs."""
    try:
        return resolve_device(device)
    except ValueError as err:
        raise ArgumentError("device", str(err)) from None


def check_init_checkpoint(path: str | Path | None) -> None:
    """``init_checkpoint`` must be an existing state-dict file or diffusers model folder."""
    if path is None:
        return
    p = Path(path).expanduser()
    if p.is_dir() and not (p / "config.json").is_file() and not (
        (p / "model_index.json").is_file() and (p / "unet" / "config.json").is_file()
    ):
        raise ArgumentError("init_checkpoint", f"{str(path)!r} is a folder without "
                         "config.json (nor model_index.json and unet/); expected a diffusers "
                         "model or pipeline folder, a state-dict file or an EDM .pkl")
    if not p.exists():
        raise ArgumentError("init_checkpoint", f"no such file or folder {str(path)!r}; "
                         "give a torch.save'd state dict of the network or a local diffusers "
                         "model folder")


def load_weights(module: nn.Module, path: str | Path) -> nn.Module:
    """Load a ``torch.save``'d state dict into ``module`` (``weights_only=True``: no code runs).

    The keys must match the network's own (``model.eval_module.state_dict()``); for a
    :class:`~autophagy.models.nets.unet.UNet` the keys of the inner diffusers model are accepted
    too.
    A training checkpoint of torchcfm (``{'net_model', 'ema_model', 'optim', ...}``) gives its
    ``'ema_model'`` weights, and a ``module.`` prefix (``DataParallel``) is dropped.
    """
    state = load_weights_only(Path(path).expanduser(), path)  # one line on refusal; no code runs
    if isinstance(state, Mapping) and isinstance(state.get("ema_model"), Mapping):
        state = state["ema_model"]
    if not isinstance(state, Mapping):
        raise ArgumentError("init_checkpoint", f"{str(path)!r} does not hold a state "
                         f"dict (got {type(state).__name__})")
    if state and all(str(k).startswith("module.") for k in state):
        state = {str(k)[len("module."):]: v for k, v in state.items()}
    target = module
    if isinstance(module, UNet) and not any(str(k).startswith("unet.") for k in state):
        target = module.unet
    own = target.state_dict()
    wrong = [k for k, v in state.items() if k in own and (
        not isinstance(v, torch.Tensor) or tuple(v.shape) != tuple(own[k].shape))]
    if wrong:
        k = wrong[0]
        got = tuple(state[k].shape) if isinstance(state[k], torch.Tensor) else type(state[k])
        raise ArgumentError("init_checkpoint", f"{str(path)!r} does not fit the network: "
                         f"{len(wrong)} tensors of another shape (e.g. {k}: {got}, the network "
                         f"has {tuple(own[k].shape)})")
    missing, unexpected = target.load_state_dict(dict(state), strict=False)
    if missing or unexpected:
        raise ArgumentError(
            "init_checkpoint",
            f"{str(path)!r} does not fit the network: "
            f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:2]})"
        )
    return module


class NeuralModel:
    """The :class:`~autophagy.models.base.GenerativeModel` glue shared by the torch families.

    Arguments (keyword-only, shared by every neural family):
        lr, batch_size, budget, initial_budget, warmup, grad_clip, ema,
        weight_decay:
            optimisation, see :class:`~autophagy.models.training.trainer.TrainConfig` (budgets in
            samples
            seen; ``initial_budget`` for training from scratch, ``budget`` for fine-tuning).
        device: ``"auto"`` (cuda when available), ``"cpu"`` or ``"cuda"``; checked at
            construction (``"cuda"`` without a GPU raises ``ValueError``).
        mixed_precision: bfloat16 autocast of training and sampling on CUDA (ignored on CPU).
        standardize: fit a fixed per-feature standardisation of point data (n, d) at the first
            fit. Images (n, C, H, W) are never standardised: they are already in [-1, 1], and
            their samples are clamped to [-1, 1], the data's range.
        init_checkpoint: start every cold fit from these weights instead of random ones: a
            ``torch.save``'d state dict of the network (or a torchcfm training checkpoint: its
            ``'ema_model'``), a local diffusers model or pipeline folder
            (``UNet2DModel.save_pretrained``, a downloaded ``google/ddpm-cifar10-32``; the
            architecture then comes from the folder), or an NVlabs/edm ``.pkl`` (model edm,
            network songunet; read without running its code). Generation 0 then trains only the
            ``budget`` given to ``fit`` (the config's ``model.initial_budget``), else 0 samples.
        sample_batch_size: samples drawn per network batch (bounds memory, not the result's
            size).
        restart_warmup, reset_ema, reset_optimizer: restart the warm-up ramp / the EMA / the
            AdamW moments at every fit, as EDM's transfer learning does for each fine-tuning run
            (see :class:`~autophagy.models.training.trainer.TrainConfig`).
        budget_epochs: fine-tune for this many epochs of each generation's training set instead
            of a fixed ``budget`` (the paper's DDPM: one epoch of the mixed set, so lambda = 1
            trains twice as long as lambda = 0); a budget given to ``fit`` still wins.

    Standardisation: the per-feature mean and standard deviation of the data of the *first* fit
    are stored (``shift_``, ``scale_``, in the state dict) and kept for the model's life, also on
    later cold refits. The loop retrains on the model's own samples; a scaler refit each
    generation would renormalise a shrinking or drifting distribution to unit scale and hand each
    generation a different coordinate system. Build a new model to refit the scaler.
    """

    def __init__(
        self,
        *,
        lr: float = 1e-3,
        batch_size: int = 256,
        budget: int = 16_384,
        initial_budget: int | None = 512_000,
        warmup: int = 0,
        grad_clip: float | None = 1.0,
        ema: float = 0.0,
        weight_decay: float = 0.0,
        device: str = "auto",
        mixed_precision: bool = True,
        standardize: bool = True,
        init_checkpoint: str | None = None,
        sample_batch_size: int = 4096,
        restart_warmup: bool = False,
        reset_ema: bool = False,
        reset_optimizer: bool = False,
        budget_epochs: float | None = None,
    ):
        self.lr = lr
        self.batch_size = batch_size
        self.budget = budget
        self.initial_budget = initial_budget
        self.warmup = warmup
        self.grad_clip = grad_clip
        self.ema = ema
        self.weight_decay = weight_decay
        self.device = device
        self.mixed_precision = mixed_precision
        self.standardize = standardize
        self.init_checkpoint = init_checkpoint
        self.sample_batch_size = sample_batch_size
        self.restart_warmup = restart_warmup
        self.reset_ema = reset_ema
        self.reset_optimizer = reset_optimizer
        self.budget_epochs = budget_epochs
        if budget_epochs is not None and not float(budget_epochs) > 0:
            raise ArgumentError("budget_epochs", f"must be a number > 0, got {budget_epochs!r}")
        for name in ("budget", "initial_budget"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 0):
                raise ArgumentError(name, f"must be a number of samples >= 0, got {value!r}")
        check_device(device)
        check_init_checkpoint(init_checkpoint)
        if int(sample_batch_size) < 1:
            raise InputError(f"sample_batch_size must be >= 1, got {sample_batch_size!r}")

    # --------------------------------------------------------- family hooks
    def _make_module(self, shape: tuple[int, ...]) -> nn.Module:
        raise NotImplementedError

    def _loss(
        self, module: nn.Module, batch: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        raise NotImplementedError

    def _sample(
        self, module: nn.Module, n: int, generator: torch.Generator, temperature: float
    ) -> torch.Tensor:
        """``n`` samples in model space, shape (n, *shape), on the model's device."""
        raise NotImplementedError

    def _validate(self) -> None:
        """Check the family's own hyper-parameters (raise ``ValueError`` naming the argument)."""

    def _pretrained_module(self, path: Path, shape: tuple[int, ...]) -> nn.Module:
        """The module of a checkpoint that carries its own architecture (a folder, a .pkl)."""
        raise ArgumentError("init_checkpoint", f"{type(self).__name__} cannot load "
                         f"{str(path)!r}; give a state-dict file")

    # --------------------------------------------------------------- helpers
    def _build_module(self, shape: tuple[int, ...]) -> nn.Module:
        """The family's module, with ``init_checkpoint``'s weights when one is given."""
        if self.init_checkpoint is None:
            return self._make_module(shape)
        path = Path(self.init_checkpoint).expanduser()
        check_init_checkpoint(path)
        if path.is_dir() or path.suffix == ".pkl":  # a diffusers folder or an NVlabs/edm pickle
            return self._pretrained_module(path, shape)
        return load_weights(self._make_module(shape), path)

    def check_pretrained(self, data: np.ndarray) -> None:
        """Read ``init_checkpoint`` for data shaped like ``data`` and build the network from it,
        then drop it: run before a run directory exists, so a refused, damaged or mismatched
        file stops the run in one line instead of failing every cell."""
        if self.init_checkpoint is not None:
            self._build_module(tuple(int(s) for s in np.shape(data)[1:]))

    def budget_for(self, cold: bool) -> int:
        """Samples to see when ``fit`` is given none: ``initial_budget`` when training from
        scratch (``None``: ``budget``), else ``budget``. The constructor is the one home of both."""
        if cold and self.initial_budget is not None:
            return int(self.initial_budget)
        return int(self.budget)

    def _train_config(self) -> TrainConfig:
        return TrainConfig(**{k: getattr(self, k) for k in _TRAIN_FIELDS})

    def _new_trainer(self) -> Trainer:
        shape = self.shape_
        return Trainer(lambda: self._build_module(shape), self._train_config())

    def _trainer(self) -> Trainer:
        trainer = getattr(self, "trainer_", None)
        if trainer is None or not trainer.initialized:
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit() first")
        return trainer

    @property
    def images_(self) -> bool:
        """Whether the samples are images (C, H, W) rather than points (d,)."""
        return len(self.shape_) == 3

    def _to_model_space(self, x: np.ndarray) -> torch.Tensor:
        """Data (n, *shape) -> standardised float32 tensor (n, *shape) on the model's device."""
        device = self._trainer().device
        if not self.standardize or self.images_:
            return torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
        u = (np.asarray(x, dtype=np.float64) - self.shift_) / self.scale_
        return torch.as_tensor(u, dtype=torch.float32, device=device)

    def _to_data_space(self, u: torch.Tensor) -> np.ndarray:
        if self.images_:
            out = u.detach().float().cpu().numpy()
            if not np.all(np.isfinite(out)):
                raise DivergedError(f"the {type(self).__name__} produced non-finite samples")
            return out.clip(-1.0, 1.0)
        out = u.detach().double().cpu().numpy() * self.scale_ + self.shift_
        if not np.all(np.isfinite(out)):
            raise DivergedError(f"the {type(self).__name__} produced non-finite samples")
        return out

    @property
    def eval_module(self) -> nn.Module:
        """The module to sample with: the EMA copy when ``ema > 0``, else the trained weights."""
        return self._trainer().eval_module

    # ------------------------------------------------------------------ API
    def fit(
        self,
        data: np.ndarray,
        *,
        warm_start: bool = False,
        budget: int | None = None,
        rng: np.random.Generator,
        progress: Callable[..., None] | None = None,
    ) -> NeuralModel:
        """Train for ``budget`` samples seen (default: ``initial_budget`` cold, else ``budget``;
        0 on a cold start from ``init_checkpoint``).

        ``warm_start=True`` continues from the current weights, AdamW moments, EMA and step count
        (a warm start on an unfitted model is a cold start); ``False`` draws fresh weights from
        ``rng`` (or loads ``init_checkpoint``). ``progress(step=, steps=)`` (the loop's callback)
        is told about training steps.

        Raises:
            DivergedError: the data hold NaN/inf (a previous generation blew up) or the loss
                stopped being finite.
        """
        trainer, x, n_seen, g, report = self._prepare_fit(data, warm_start, budget, rng, progress)
        self.last_train_ = trainer.train(x, n_seen, g, self._loss, report)
        return self

    batchable: bool = False
    """Whether :func:`fit_batched` may train several of these models as one batch: the loss
    draws no noise from the generator, or it comes as ``_draw(batch, generator)`` (the noise,
    drawn per cell from its own generator) and a pure ``_loss_given(module, batch, drawn)``,
    with ``_loss`` the one applied to the other; ``_loss_stacked(module, batch, drawn)`` gives
    the K losses of K stacked modules (:mod:`autophagy.models.training.batched`)."""

    def _prepare_fit(self, data, warm_start, budget, rng, progress):
        """Everything ``fit`` does before the training steps: checks, the scaler at the first
        fit, a cold or warm trainer, the budget; returns (trainer, data, n_seen, generator,
        report)."""
        self._validate()
        x = np.asarray(data)
        x = x.astype(np.float32 if x.ndim == 4 else np.float64, copy=False)
        if x.ndim < 2 or len(x) == 0:
            raise InputError(f"data must have shape (n, features...), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise DivergedError("the training data contain NaN or inf")
        g = torch_generator(rng)
        shape = tuple(int(s) for s in x.shape[1:])
        if getattr(self, "shape_", None) is None:
            self.shape_ = shape
            if self.standardize and not self.images_:
                self.shift_ = x.mean(axis=0)
                self.scale_ = np.maximum(x.std(axis=0), 1e-6)
            else:
                self.shift_, self.scale_ = np.zeros(shape), np.ones(shape)
        elif shape != self.shape_:
            raise InputError(f"data have shape {shape} per sample, the model was fitted on "
                             f"{self.shape_}")
        trainer = getattr(self, "trainer_", None)
        cold = not warm_start or trainer is None or not trainer.initialized
        if cold:
            trainer = self._new_trainer()
            trainer.reset(g)
            self.trainer_ = trainer
        else:
            trainer.config = self._train_config()
        if budget is not None:
            n_seen = int(budget)
        elif not cold and self.budget_epochs is not None:
            n_seen = math.ceil(float(self.budget_epochs) * len(x))
        else:
            n_seen = 0 if cold and self.init_checkpoint else self.budget_for(cold)
        report = None
        if progress is not None:
            def report(step: int, total: int, loss: float) -> None:
                progress(step=step, steps=total)
        return trainer, self._to_model_space(x), n_seen, g, report

    @torch.no_grad()
    def sample(
        self, n: int, *, rng: np.random.Generator, temperature: float = 1.0
    ) -> np.ndarray:
        """``n`` samples (the family's sampler, in batches of ``sample_batch_size``)."""
        trainer = self._trainer()
        n = int(n)
        if n == 0:
            return np.empty((0, *self.shape_))
        module = self.eval_module
        tau = check_temperature(temperature)
        g = torch_generator(rng)
        chunk = int(self.sample_batch_size)
        with trainer.autocast():
            parts = [self._sample(module, min(chunk, n - i), g, tau).float()
                     for i in range(0, n, chunk)]
        return self._to_data_space(torch.cat(parts))

    # ------------------------------------------------------- function space
    def function_probes(
        self, rng: np.random.Generator, held_out: np.ndarray, samples: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Fixed probes for :meth:`function_values`: points (real held-out and generation-0
        samples, :func:`~autophagy.models.base.probe_points`) and the seed of the family's own
        draws at them (the (x, t) pairs of a denoiser or velocity)."""
        x = probe_points(rng, held_out, samples, values_each=math.prod(self.shape_))
        return {"x": x, "seed": np.int64(rng.integers(2**62))}

    @torch.no_grad()
    def function_values(self, probes: dict[str, np.ndarray]) -> np.ndarray:
        """What the sampling network predicts at the probes (:meth:`_prediction`: a denoiser,
        a noise or a velocity at the (x, t) pairs the family's loss draws), flat, divided by
        sqrt(#probes): the Euclidean distance between two generations' values is then the root
        mean square over probes of the difference of their predictions."""
        x = self._to_model_space(probes["x"])
        generator = torch.Generator().manual_seed(int(probes["seed"]))
        out = self._prediction(self.eval_module, x, self._draw(x, generator))
        return out.double().cpu().numpy().reshape(-1) / math.sqrt(len(x))

    def state_dict(self) -> dict[str, Any]:
        """Sample shape, the fixed standardisation and the trainer (weights, EMA, AdamW, step)."""
        if getattr(self, "shape_", None) is None:
            return {"fitted": False}
        trainer = getattr(self, "trainer_", None)
        return {
            "fitted": True,
            "shape": list(self.shape_),
            "shift": np.array(self.shift_, dtype=np.float64),
            "scale": np.array(self.scale_, dtype=np.float64),
            "trainer": {"initialized": False} if trainer is None else trainer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the constructor arguments must match the saved model's."""
        self.trainer_ = None
        if not state.get("fitted", False):
            self.shape_ = None
            return
        self._validate()
        self.shape_ = tuple(int(s) for s in state["shape"])
        self.shift_ = np.array(state["shift"], dtype=np.float64)
        self.scale_ = np.array(state["scale"], dtype=np.float64)
        trainer = self._new_trainer()
        trainer.load_state_dict(state["trainer"])
        self.trainer_ = trainer


class NetworkModel(NeuralModel):
    """A :class:`NeuralModel` whose module is a network ``net(x, c)`` (flow matching, diffusion).

    Arguments (keyword-only):
        network: a name in :data:`~autophagy.models.nets.NETWORKS` (``"mlp"`` for points,
            ``"unet"`` for images) or a builder ``builder(shape, **options)``.
        hidden_features, time_features: the ``"mlp"``'s widths and time-embedding size.
        network_options: any other options of the network, e.g. ``{block_out_channels: [32,
            64], layers_per_block: 1, attention: false}`` for the ``"unet"``.
        **options: the training options of :class:`NeuralModel`.
    """

    def __init__(
        self,
        *,
        network: str | NetworkBuilder = "mlp",
        hidden_features: Sequence[int] = (128, 128, 128),
        time_features: int = 32,
        network_options: Mapping[str, Any] | None = None,
        **options: Any,
    ):
        super().__init__(**options)
        self.network = network
        self.hidden_features = hidden_features
        self.time_features = time_features
        self.network_options = network_options
        check_network(network, self._network_options())

    def _network_options(self) -> dict[str, Any]:
        options = dict(self.network_options or {})
        if self.network == "mlp":
            options = {"hidden_features": self.hidden_features,
                       "time_features": self.time_features, **options}
        return options

    def _make_module(self, shape: tuple[int, ...]) -> nn.Module:
        return build_network(self.network, shape, self._network_options())

    @property
    def batchable(self) -> bool:  # type: ignore[override]
        """The family splits its loss (``_draw``, ``_loss_given``) and the network stacks
        (:data:`~autophagy.models.nets.BATCHABLE`: the MLP)."""
        return hasattr(self, "_draw") and isinstance(self.network, str) and (
            self.network in BATCHABLE)

    def _loss_stacked(self, module: nn.Module, batch: torch.Tensor,
                      drawn: dict[str, torch.Tensor]) -> torch.Tensor:
        """The K cells' losses at once: ``module`` is K networks stacked
        (:func:`~autophagy.models.training.batched.stack_linear`), ``batch`` and the draws have
        the cell as their first dimension. The families' losses are written for any leading
        dimensions, so this is ``_loss_given`` on the stacked tensors: one code path."""
        return self._loss_given(module, batch, drawn)  # type: ignore[attr-defined]

    def _pretrained_module(self, path: Path, shape: tuple[int, ...]) -> nn.Module:
        if path.suffix == ".pkl" and not path.is_dir():
            raise ArgumentError("init_checkpoint", f"{str(path)!r} is an NVlabs/edm pickle; "
                             "only model edm with network songunet loads one")
        if self.network != "unet":
            return super()._pretrained_module(path, shape)
        if not (path / "config.json").is_file():  # a pipeline folder (google/ddpm-cifar10-32)
            path = path / "unet"
        scale = (self.network_options or {}).get("time_scale", 1000.0)
        return UNet.from_pretrained(path, shape, time_scale=float(scale))


def fit_batched(
    models: Sequence[NeuralModel],
    datas: Sequence[np.ndarray],
    *,
    warm_start: bool,
    budgets: Sequence[int | None],
    rngs: Sequence[np.random.Generator],
    progress: Sequence[Callable[..., None] | None] | None = None,
) -> list[BaseException | None]:
    """``model.fit(data, ...)`` for every model, trained as one batch where they can be
    (:mod:`autophagy.models.training.batched`), one after another where they cannot.

    Returns, per model, ``None`` or the exception its fit raised (a diverged cell does not stop
    the others). Each model draws from its own ``rng`` exactly as its own ``fit`` would.
    """
    from autophagy.models.training.batched import NotBatchable, train_batched

    progress = list(progress) if progress is not None else [None] * len(models)
    errors: list[BaseException | None] = [None] * len(models)
    prepared = []
    for i, (model, data, budget, rng) in enumerate(zip(models, datas, budgets, rngs, strict=True)):
        try:
            prepared.append((i, model._prepare_fit(data, warm_start, budget, rng, progress[i])))
        except (DivergedError, ValueError) as err:
            errors[i] = err
    kinds = {(type(models[i]), _settings(models[i])) for i, _ in prepared}
    same_budget = len({p[2] for _, p in prepared}) == 1
    if len(prepared) > 1 and same_budget and len(kinds) == 1 and models[prepared[0][0]].batchable:
        trainers = [p[0] for _, p in prepared]
        first = models[prepared[0][0]]
        draw = getattr(first, "_draw", None)  # the loss's noise, drawn per cell
        try:
            results = train_batched(trainers, [p[1] for _, p in prepared], prepared[0][1][2],
                                    [p[3] for _, p in prepared],
                                    first._loss if draw is None else first._loss_given,
                                    [p[4] for _, p in prepared], draw=draw,
                                    loss_stacked=getattr(first, "_loss_stacked", None))
        except NotBatchable:
            results = None
        if results is not None:
            for (i, _), result in zip(prepared, results, strict=True):
                if isinstance(result, BaseException):
                    errors[i] = result
                else:
                    models[i].last_train_ = result
            return errors
    for i, (trainer, x, n_seen, g, report) in prepared:
        try:
            models[i].last_train_ = trainer.train(x, n_seen, g, models[i]._loss, report)
        except DivergedError as err:
            errors[i] = err
    return errors


def _settings(model: NeuralModel) -> str:
    """A model's constructor arguments (its attributes without a trailing ``_``): models batch
    together only when they agree, so that one loss (the first model's) is every cell's."""
    return repr(sorted((k, v) for k, v in vars(model).items() if not k.endswith("_")))
