"""Self-guidance away from the model's own samples: SIMS (Alemohammad et al., 2024).

"Self-Improving Diffusion Models with Synthetic Data": after the base model is trained, an
auxiliary copy of it is fine-tuned on the base model's *own* samples, and sampling follows the
negatively guided score

    score = score_base + w (score_base - score_aux)

so the sampler is pushed away from the manifold the model's synthetic data already covers. In the
self-consuming loop the guided model is the one that samples (the synthetic training data of the
next generation and the evaluation samples); the base is retrained as usual and the auxiliary copy
is re-derived from it every generation.

Why guiding the network output is guiding the score: every family here predicts something affine
in the score with the same coefficients for base and auxiliary at a given (x, t): DDPM's epsilon
(score = -eps / sigma_t), EDM's preconditioned output F (denoiser D = c_skip x + c_out F, score =
(D - x) / sigma^2; the c_skip x terms cancel in ``(1 + w) D_b - w D_a``) and flow matching's
velocity (the issue's "velocity field alike"). So one wrapper, :class:`GuidedModule`, returning
``(1 + w) f_base - w f_aux``, serves every sampler unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from autophagy.errors import InputError
from autophagy.models.training.trainer import torch_generator
from autophagy.theory.sampling import check_temperature


class GuidedModule(nn.Module):
    """``(1 + w) base(*args) - w aux(*args)``: negative guidance on a network's output."""

    def __init__(self, base: nn.Module, aux: nn.Module, guidance: float):
        super().__init__()
        self.base, self.aux, self.guidance = base, aux, float(guidance)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        w = self.guidance
        return (1.0 + w) * self.base(*args, **kwargs) - w * self.aux(*args, **kwargs)


class SelfGuided:
    """A neural family (``ddpm``, ``edm``, ``cfm``, ``otcfm``) sampled with SIMS self-guidance.

    Arguments:
        base: the model (a :class:`~autophagy.models.families.neural.NeuralModel`) to train and
        guide.
        guidance: w >= 0; 0 samples the base model as it is.
        aux_budget: training samples the auxiliary copy sees on the base's samples each
            generation (default: the budget of the base's fit).
        aux_samples: how many base samples it is fine-tuned on (default: as many as the base
            was trained on).
    """

    def __init__(self, base: Any, guidance: float = 1.0, aux_budget: int | None = None,
                 aux_samples: int | None = None):
        from autophagy.models.families.neural import NeuralModel

        if not isinstance(base, NeuralModel):
            raise InputError(f"self-guidance needs a diffusion or flow-matching model, got "
                             f"{type(base).__name__}")
        if isinstance(guidance, bool) or not (np.isfinite(guidance) and guidance >= 0):
            raise InputError(f"self_guidance must be a number >= 0, got {guidance!r}")
        self.base, self.guidance = base, float(guidance)
        self.aux_budget, self.aux_samples = aux_budget, aux_samples
        self.aux_ = None

    @property
    def sampling_temperature(self) -> str:
        return "approximate"

    def fit(self, data, *, warm_start=False, budget=None, rng, progress=None) -> SelfGuided:
        """Fit the base on ``data``, then fine-tune a copy of it on the base's own samples."""
        kwargs = {} if progress is None else {"progress": progress}
        self.base.fit(data, warm_start=warm_start, budget=budget, rng=rng, **kwargs)
        if self.guidance == 0:
            return self
        m = int(self.aux_samples or len(data))
        own = self.base.sample(m, rng=rng)
        aux = copy.deepcopy(self.base)
        aux_budget = self.aux_budget if self.aux_budget is not None else budget
        aux.fit(own, warm_start=True, budget=aux_budget, rng=rng)
        self.aux_ = aux
        return self

    @torch.no_grad()
    def sample(self, n: int, *, rng: np.random.Generator, temperature: float = 1.0):
        """``n`` samples from the base's sampler with the guided network (module docstring)."""
        if self.guidance == 0 or self.aux_ is None:
            return self.base.sample(n, rng=rng, temperature=temperature)
        base = self.base
        n, tau = int(n), check_temperature(temperature)
        if n == 0:
            return np.empty((0, *base.shape_))
        module = GuidedModule(base.eval_module, self.aux_.eval_module, self.guidance)
        g = torch_generator(rng)
        chunk = int(base.sample_batch_size)
        with base._trainer().autocast():
            parts = [base._sample(module, min(chunk, n - i), g, tau).float()
                     for i in range(0, n, chunk)]
        return base._to_data_space(torch.cat(parts))

    def state_dict(self) -> dict[str, Any]:
        aux = {"fitted": False} if self.aux_ is None else self.aux_.state_dict()
        return {"base": self.base.state_dict(), "aux": aux}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base.load_state_dict(state["base"])
        self.aux_ = None
        if state["aux"].get("fitted", False):
            self.aux_ = copy.deepcopy(self.base)
            self.aux_.load_state_dict(state["aux"])
