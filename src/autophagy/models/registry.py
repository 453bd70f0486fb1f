"""Model families by name, imported lazily so that ``autophagy list`` never loads torch."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from autophagy.options import check_options


@dataclass(frozen=True)
class ModelEntry:
    target: str  # "module:Class"
    description: str
    defaults: tuple[tuple[str, Any], ...] = ()

    def load(self) -> type:
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(module), cls)


MODELS: dict[str, ModelEntry] = {
    "gaussian": ModelEntry(
        "autophagy.models.gaussian:GaussianMLE",
        "Full-covariance Gaussian by maximum likelihood (the paper's theory is exact for it)",
    ),
    "gmm": ModelEntry(
        "autophagy.models.mixture:GaussianMixture",
        "Gaussian mixture by EM (scikit-learn), warm-started from the previous generation",
    ),
    "kde": ModelEntry(
        "autophagy.models.kde:KernelDensity",
        "Gaussian kernel density estimate, fixed or rule-of-thumb bandwidth",
    ),
    "nsf": ModelEntry(
        "autophagy.models.flows:NormalizingFlow",
        "Neural spline flow (zuko), maximum likelihood, exact log_prob; the paper's 2-D model",
        (("flow", "nsf"),),
    ),
    "maf": ModelEntry(
        "autophagy.models.flows:NormalizingFlow",
        "Masked autoregressive flow (zuko, affine), maximum likelihood, exact log_prob",
        (("flow", "maf"),),
    ),
    "cfm": ModelEntry(
        "autophagy.models.flow_matching:FlowMatching",
        "Conditional flow matching (Lipman et al. 2023), option coupling: independent | ot",
    ),
    "otcfm": ModelEntry(
        "autophagy.models.flow_matching:FlowMatching",
        "Flow matching with minibatch optimal-transport coupling (OT-CFM, Tong et al. 2024)",
        (("coupling", "ot"),),
    ),
    "ddpm": ModelEntry(
        "autophagy.models.diffusion:DDPM",
        "DDPM diffusion (Ho et al. 2020), epsilon prediction, option sampler: ddpm | ddim",
    ),
    "edm": ModelEntry(
        "autophagy.models.diffusion:EDM",
        "EDM diffusion (Karras et al. 2022): preconditioned denoiser, Heun sampler",
    ),
}


def build_model(name: str, options: dict[str, Any] | None = None) -> Any:
    """Instantiate the model family ``name`` with ``options`` (validated against its signature)."""
    if name not in MODELS:
        raise ValueError(f"model.name: unknown model {name!r}; choose from: {', '.join(MODELS)}")
    entry = MODELS[name]
    cls = entry.load()
    opts = {**dict(entry.defaults), **(options or {})}
    try:
        check_options(cls.__init__, opts, field="model.options", skip=("self",))
    except ValueError as err:
        raise ValueError(
            f"{err} (model {name!r}; after changing model.name, reset the preset's options "
            "with --set model.options={})"
        ) from None
    try:
        return cls(**opts)
    except (TypeError, ValueError) as err:
        message = str(err)  # errors that already name their field (model.options.device) stay
        raise ValueError(
            message if message.startswith("model.") else f"model.options: {message}"
        ) from None
