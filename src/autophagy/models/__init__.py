"""Generative model families behind one protocol (:class:`GenerativeModel`)."""

from autophagy.models.base import GenerativeModel, has_log_prob, sample_at, temperature_support
from autophagy.models.families.gaussian import GaussianMLE
from autophagy.models.families.kde import KernelDensity
from autophagy.models.families.mixture import GaussianMixture
from autophagy.models.registry import DEFAULTS as MODEL_DEFAULTS
from autophagy.models.registry import MODELS, build_model

__all__ = [
    "MODELS",
    "MODEL_DEFAULTS",
    "GaussianMLE",
    "GaussianMixture",
    "GenerativeModel",
    "KernelDensity",
    "build_model",
    "has_log_prob",
    "sample_at",
    "temperature_support",
]
