"""Class-conditional DDPM: images generated for a class, so that labels travel with samples.

The downstream studies (Zhang et al. 2024; Wyllie et al. 2024) retrain a *class-conditional*
generator: every synthetic image is drawn for a label, and the label it was drawn for is its
label in the next generation's training set. Points do this with a label column that every
family models (``minority_modes``, ``linear_regression``); images do it here, with the label as
a modelled *plane*:

- the model is fitted on arrays (n, C + 1, H, W) whose last channel holds each image's class
  (the same integer over the whole plane), and samples arrays of that shape. The policies only
  select and concatenate rows, so the label plane travels through mixing, accumulation and
  subsampling with no policy knowing about it, and into the checkpoints with the policy state;
  the loop adds the plane to real data and takes it off before any metric sees an image
  (:func:`with_labels`, :func:`split_plane`);
- the joint model is p(y) p(x | y): p(y) the class shares of the training set, refitted at every
  fit (so a class the samples under-represent stays under-represented: the minority can fade),
  p(x | y) a UNet with one learned embedding per class added to its time embedding (diffusers'
  ``num_class_embeds``);
- classifier-free guidance (Ho and Salimans, 2022): training drops the label with probability
  ``label_dropout`` (a null class), and sampling at ``guidance`` w > 0 follows
  ``(1 + w) eps(x, y) - w eps(x, null)``; w = 0 is the plain conditional model, one pass.

A class is the dataset's label (``condition_on: label``; a group attribute is then the
generator's to draw, and the group annotator reads it: the generator may amplify a colour-label
shortcut, as in the papers), or the (label, group) cell (``condition_on: cell``; the group is
asked for too, and only its share can drift) (:func:`autophagy.data.labelled.class_cells`).

Reference:
    | Ho and Salimans. Classifier-Free Diffusion Guidance (2022).
    | https://arxiv.org/abs/2207.12598
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from autophagy.errors import InputError
from autophagy.models.families.diffusion import DDPM, _noise, ddim_sample, ddpm_loss, ddpm_sample
from autophagy.models.training.trainer import DivergedError, randn, torch_generator
from autophagy.signatures import ArgumentError
from autophagy.theory.sampling import check_temperature

__all__ = ["ConditionalDDPM", "split_plane", "with_labels"]


def with_labels(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Images (n, C, H, W) and their classes (n,) as one array (n, C + 1, H, W), float32."""
    x = np.asarray(images, dtype=np.float32)
    y = np.asarray(labels, dtype=np.float32).reshape(-1, 1, 1, 1)
    if x.ndim != 4 or len(y) != len(x):
        raise InputError(f"with_labels: need images (n, C, H, W) and n labels, got {x.shape} "
                         f"and {len(y)}")
    return np.concatenate([x, np.broadcast_to(y, (len(x), 1, *x.shape[2:]))], axis=1)


def split_plane(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`with_labels`: (images (n, C, H, W), classes (n,) int64)."""
    a = np.asarray(x)
    if a.ndim != 4 or a.shape[1] < 2:
        raise InputError(f"expected images with a label plane (n, C + 1, H, W), got {a.shape}")
    return a[:, :-1], np.rint(a[:, -1].reshape(len(a), -1).mean(1)).astype(np.int64)


class ConditionalDDPM(DDPM):
    """DDPM (:class:`~autophagy.models.families.diffusion.DDPM`) of images given their class.

    Fitted on and sampling arrays (n, C + 1, H, W) with the label plane last (see the module
    docstring); ``sample(n, rng=, labels=)`` draws images for the classes asked for.

    Arguments:
        guidance: classifier-free guidance weight w at sampling (0: none, one network pass).
        condition_on: ``"label"`` or ``"cell"``, the (label, group) pair of a dataset with a
            group attribute (see the module docstring).
        label_dropout: probability that training hides an image's label (the null class that
            guidance needs; 0 trains no unconditional model, and guidance then refuses).
        **options: :class:`~autophagy.models.families.diffusion.DDPM`'s (the network must be
            the ``"unet"``).

    The number of classes is the loop's to set (:meth:`set_classes`) before the first fit,
    from the dataset; outside a loop, give ``n_classes``.
    """

    class_conditional = True

    def __init__(self, guidance: float = 0.0, label_dropout: float = 0.1,
                 condition_on: Literal["label", "cell"] = "label", n_classes: int | None = None,
                 **options: Any):
        options.setdefault("network", "unet")
        super().__init__(**options)
        self.guidance, self.label_dropout, self.n_classes = guidance, label_dropout, n_classes
        self.condition_on = condition_on
        if condition_on not in ("label", "cell"):
            raise ArgumentError("condition_on", f"must be 'label' or 'cell', got "
                                f"{condition_on!r}")
        if self.network != "unet":
            raise ArgumentError("network", f"a class-conditional DDPM needs network: unet (its "
                                f"class embeddings), got {self.network!r}")
        if not 0 <= float(label_dropout) < 1:
            raise ArgumentError("label_dropout", f"must be in [0, 1), got {label_dropout!r}")
        if not float(guidance) >= 0:
            raise ArgumentError("guidance", f"must be >= 0, got {guidance!r}")
        if float(guidance) > 0 and float(label_dropout) == 0:
            raise ArgumentError("guidance", "needs label_dropout > 0 (guidance contrasts the "
                                "model with its unconditional self, which label dropout trains)")
        if self.init_checkpoint is not None:
            raise ArgumentError("init_checkpoint", "a class-conditional DDPM trains its class "
                                "embeddings from scratch; drop init_checkpoint")
        if n_classes is not None:
            self.set_classes(n_classes)

    def set_classes(self, n: int) -> None:
        """The number of classes (the loop's: the dataset's labels or (label, group) cells)."""
        if int(n) < 1:
            raise ArgumentError("n_classes", f"must be >= 1, got {n!r}")
        self.n_classes_ = int(n)

    @property
    def null_class(self) -> int:
        """The index of the hidden label (classifier-free guidance's unconditional model)."""
        return self._classes()

    def _classes(self) -> int:
        n = getattr(self, "n_classes_", None)
        if n is None:
            raise InputError("a class-conditional DDPM needs its number of classes: give "
                             "n_classes, or run it in a loop on a dataset with labels")
        return n

    # ---------------------------------------------------------------- fitting
    def _make_module(self, shape: tuple[int, ...]) -> nn.Module:
        """The UNet of the images (the label plane off), one embedding per class and a null."""
        if len(shape) != 3 or shape[0] < 2:
            raise InputError(f"a class-conditional DDPM fits images with a label plane "
                             f"(C + 1, H, W), got samples of shape {shape}")
        from autophagy.models.nets import build_network

        options = {**self._network_options(), "num_class_embeds": self._classes() + 1}
        return build_network(self.network, (shape[0] - 1, *shape[1:]), options)

    def _prepare_fit(self, data, warm_start, budget, rng, progress):
        """p(y): the class shares of this training set, refitted at every fit."""
        _, y = split_plane(data)
        n = self._classes()
        if len(y) and (y.min() < 0 or y.max() >= n):
            raise InputError(f"labels must be classes 0..{n - 1}, got {y.min()}..{y.max()}")
        self.class_shares_ = np.bincount(y, minlength=n) / max(len(y), 1)
        return super()._prepare_fit(data, warm_start, budget, rng, progress)

    def _draw(self, batch: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Steps, noise of the images, and which labels training hides (classifier-free)."""
        T, n = int(self.timesteps), len(batch)
        t = torch.randint(0, T, (n,), generator=generator).to(batch.device)
        eps = randn((n, batch.shape[1] - 1, *batch.shape[2:]), generator, batch.device)
        hide = torch.rand((n,), generator=generator).to(batch.device) < float(self.label_dropout)
        return {"t": t, "eps": eps, "hide": hide}

    def _labels(self, batch: torch.Tensor, drawn: dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch[:, :-1], batch[:, -1].flatten(1).mean(1).round().long()
        return x, torch.where(drawn["hide"], torch.full_like(y, self.null_class), y)

    def _loss_given(self, module: nn.Module, batch: torch.Tensor, drawn: dict[str, torch.Tensor]):
        x, y = self._labels(batch, drawn)
        return ddpm_loss(lambda xt, c: module(xt, c, y), x, drawn["t"], drawn["eps"],
                         torch.cumprod(1 - self.betas_, 0))

    def _prediction(self, module: nn.Module, batch: torch.Tensor, drawn: dict[str, torch.Tensor]):
        x, y = self._labels(batch, drawn)
        abar = torch.cumprod(1 - self.betas_, 0).to(x)[drawn["t"]]
        s = abar.sqrt().reshape(-1, 1, 1, 1)
        xt = s * x + (1 - abar).sqrt().reshape(-1, 1, 1, 1) * drawn["eps"]
        return module(xt, drawn["t"].to(x.dtype) / int(self.timesteps), y)

    @torch.no_grad()
    def function_values(self, probes: dict[str, np.ndarray]) -> np.ndarray:
        """The conditional noise prediction at the probes, each probe image given a class drawn
        uniformly from the probes' seed (the probes are images without a plane)."""
        x = np.asarray(probes["x"], dtype=np.float32)
        if x.shape[1] == self.shape_[0] - 1:
            classes = np.random.default_rng(int(probes["seed"])).integers(self._classes(),
                                                                         size=len(x))
            x = with_labels(x, classes)
        return super().function_values({**probes, "x": x})

    # --------------------------------------------------------------- sampling
    def _guided(self, module: nn.Module, y: torch.Tensor):
        """eps(x, c) for classes ``y``: plain, or guided (one batched pass of both)."""
        w = float(self.guidance)
        if w == 0:
            return lambda x, c: module(x, c, y)
        null = torch.full_like(y, self.null_class)

        def eps(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            both = module(torch.cat([x, x]), torch.cat([c, c]), torch.cat([y, null]))
            cond, uncond = both.chunk(2)
            return (1 + w) * cond - w * uncond

        return eps

    @torch.no_grad()
    def sample(self, n: int, *, rng: np.random.Generator, temperature: float = 1.0,
               labels: Any = None) -> np.ndarray:
        """``n`` images with their label plane: for the classes ``labels`` when given, else
        for classes drawn from the training set's shares."""
        trainer, n = self._trainer(), int(n)
        g = torch_generator(rng)
        if labels is None:
            shares = torch.as_tensor(self.class_shares_, dtype=torch.float64)
            y = torch.multinomial(shares, n, replacement=True, generator=g) if n else (
                torch.zeros(0, dtype=torch.long))
        else:
            y = torch.as_tensor(np.asarray(labels, dtype=np.int64).reshape(-1))
            if len(y) != n or (n and (y.min() < 0 or y.max() >= self._classes())):
                raise InputError(f"labels: need {n} classes in 0..{self._classes() - 1}")
        images = (n, self.shape_[0] - 1, *self.shape_[1:])
        if n == 0:
            return np.empty((0, *self.shape_), dtype=np.float32)
        tau, module, chunk = check_temperature(temperature), self.eval_module, int(
            self.sample_batch_size)
        device = trainer.device
        parts = []
        with trainer.autocast():
            for i in range(0, n, chunk):
                part = y[i:i + chunk].to(device)
                noise = _noise(g, tau, device)
                x = noise((len(part), *images[1:]))
                eps = self._guided(module, part)
                if self.sampler == "ddpm":
                    x = ddpm_sample(eps, x, self.betas_, noise)
                else:
                    clip = None if self.clip is None else float(self.clip)
                    x = ddim_sample(eps, x, self.betas_, noise, steps=self.steps,
                                    eta=float(self.eta), clip=clip, skip=str(self.skip))
                parts.append(x.float())
        out = self._images_to_data(torch.cat(parts))
        return with_labels(out, y.numpy())

    def _images_to_data(self, u: torch.Tensor) -> np.ndarray:
        out = u.detach().float().cpu().numpy()
        if not np.all(np.isfinite(out)):
            raise DivergedError("the ConditionalDDPM produced non-finite samples")
        return out.clip(-1.0, 1.0)

    # ------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if state.get("fitted"):
            state["classes"] = {"n": self._classes(),
                                "shares": np.asarray(self.class_shares_, dtype=np.float64)}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("fitted"):
            self.set_classes(int(state["classes"]["n"]))
            self.class_shares_ = np.asarray(state["classes"]["shares"], dtype=np.float64)
        super().load_state_dict(state)

