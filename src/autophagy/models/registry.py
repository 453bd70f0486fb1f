"""Model families by name, imported lazily so that ``autophagy list`` never loads torch."""

from __future__ import annotations

from typing import Any

from autophagy.registry import Registry
from autophagy.signatures import ArgumentError, check_options

_FAMILIES = {
    "gaussian": (
        "autophagy.models.families.gaussian:GaussianMLE",
        "Full-covariance Gaussian by maximum likelihood (the paper's theory is exact for it)",
    ),
    "gmm": (
        "autophagy.models.families.mixture:GaussianMixture",
        "Gaussian mixture by EM (scikit-learn), warm-started from the previous generation",
    ),
    "kde": (
        "autophagy.models.families.kde:KernelDensity",
        "Gaussian kernel density estimate, fixed or rule-of-thumb bandwidth",
    ),
    "categorical": (
        "autophagy.models.families.categorical:Categorical",
        "Frequencies on a finite support (labels, or points snapped to a grid); samples exactly "
        "from p^(1/temperature): heat death",
    ),
    "linear_regression": (
        "autophagy.models.families.regression:LinearRegression",
        "Least squares of the last column on the others, on a fixed design; samples (x, "
        "x w + noise): replace vs accumulate (Gerstgrasser et al. 2024)",
    ),
    "nsf": (
        "autophagy.models.families.flows:NormalizingFlow",
        "Neural spline flow (zuko), maximum likelihood, exact log_prob; the paper's 2-D model",
        (("flow", "nsf"),),
    ),
    "maf": (
        "autophagy.models.families.flows:NormalizingFlow",
        "Masked autoregressive flow (zuko, affine), maximum likelihood, exact log_prob",
        (("flow", "maf"),),
    ),
    "cfm": (
        "autophagy.models.families.flow_matching:FlowMatching",
        "Conditional flow matching (Lipman et al. 2023), option coupling: independent | ot",
    ),
    "otcfm": (
        "autophagy.models.families.flow_matching:FlowMatching",
        "Flow matching with minibatch optimal-transport coupling (OT-CFM, Tong et al. 2024)",
        (("coupling", "ot"),),
    ),
    "ddpm": (
        "autophagy.models.families.diffusion:DDPM",
        "DDPM diffusion (Ho et al. 2020), epsilon prediction, option sampler: ddpm | ddim",
    ),
    "conditional_ddpm": (
        "autophagy.models.families.conditional:ConditionalDDPM",
        "Class-conditional DDPM of labelled images (UNet class embeddings, classifier-free "
        "guidance): samples carry the label they were drawn for",
    ),
    "edm": (
        "autophagy.models.families.diffusion:EDM",
        "EDM diffusion (Karras et al. 2022): preconditioned denoiser, Heun sampler",
    ),
    # --- text (blocks of token ids) ---
    "ngram": (
        "autophagy.models.families.ngram:NGram",
        "Exact maximum-likelihood n-gram (add-k optional) on token blocks; temperature, top-k, "
        "top-p, real prefixes: vanishing tails",
    ),
    "gpt": (
        "autophagy.models.families.gpt:GPT",
        "Causal transformer: GPT-2 style from a transformers config, or a local pretrained "
        "causal LM (init_checkpoint); needs the 'text' extra",
    ),
}


MODELS: Registry[type] = Registry("model")
"""Model families by name (lazy ``module:Class`` targets); a third party adds its own with
``MODELS.register(name, cls)`` or names it in a config as ``module:Class``."""
DEFAULTS: dict[str, dict[str, Any]] = {}
"""Options a registered name fixes on its class (``maf`` is the flow class with ``flow="maf"``)."""
for _name, (_target, _description, *_defaults) in _FAMILIES.items():
    MODELS.register(_name, _target, description=_description)
    if _defaults:
        DEFAULTS[_name] = dict(_defaults[0])
del _name, _target, _description, _defaults, _FAMILIES


def build_model(name: str, options: dict[str, Any] | None = None) -> Any:
    """Instantiate the model family ``name`` with ``options`` (checked against its signature).

    Raises :class:`~autophagy.registry.UnknownName` for an unknown family and
    :class:`~autophagy.signatures.ArgumentError` for a bad option.
    """
    cls = MODELS[name]
    opts = {**DEFAULTS.get(name, {}), **(options or {})}
    check_options(cls, opts)
    try:
        return cls(**opts)
    except ArgumentError:
        raise
    except (TypeError, ValueError) as err:
        raise ArgumentError("options", str(err)) from None
