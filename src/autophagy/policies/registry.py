"""The policy registry and the ways to name a policy (config blocks, ``"mixed:0.5"``)."""

from __future__ import annotations

from typing import Any

from autophagy.errors import InputError
from autophagy.policies.base import Policy
from autophagy.policies.classic import Accumulate, FreshReal, FullySynthetic, Mixed
from autophagy.registry import Registry

POLICIES: Registry[type[Policy]] = Registry("policy")
"""Every known policy class by name; add one with ``POLICIES.register(name, cls)``."""
POLICIES.register("mixed", Mixed,
                  description="all real + floor(lambda*n) synthetic samples (the paper's scheme)")
POLICIES.register("fully_synthetic", FullySynthetic,
                  description="n synthetic samples only: the collapsing loop")
POLICIES.register("accumulate", Accumulate,
                  description="real + every earlier synthetic set (floor(lambda*n) added a "
                  "generation)")
POLICIES.register("fresh_real", FreshReal,
                  description="fraction of new real samples from a held-back pool + synthetic")
POLICIES.register("curated", "autophagy.policies.curated:Curated",
                  description="keep one of k model samples by Bradley-Terry choice under a "
                  "reward, real data at share real_weight (Ferbach et al. 2024)")

# -- mitigations (issue 24): subsampled accumulation, verification, self-correction ----------
POLICIES.register("accumulate_subsample",
                  "autophagy.policies.accumulate_subsample:AccumulateSubsample",
                  description="pool real + every synthetic set, train on n points of it drawn "
                  "without replacement (Kazdan, Schaeffer et al. 2024)")
POLICIES.register("verified", "autophagy.policies.verified:Verified",
                  description="draw until enough synthetic samples pass a verifier (oracle with "
                  "error rates, discriminator, likelihood, module:function) (Feng et al. 2024)")
POLICIES.register("self_correcting", "autophagy.policies.self_correcting:SelfCorrecting",
                  description="move each synthetic sample toward the data (nearest real point, "
                  "k-means centre, moments, module:function) at strength gamma before training "
                  "(Gillman et al. 2024)")


def policy_class(name: str) -> type[Policy]:
    """The policy class registered as ``name`` (or a ``module:Class`` name)."""
    cls = POLICIES[name]
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise InputError(f"{name!r} is not a Policy subclass")
    return cls


def make_policy(name: str, **params: Any) -> Policy:
    """Build policy ``name`` from config keys, e.g. ``make_policy("mixed", **{"lambda": 0.5})``."""
    return policy_class(name).from_params(**params)


def policy_grid(name: str, params: dict[str, Any]) -> list[Policy]:
    """One policy per combination of the listed values of its sweepable parameters, in order."""
    cls = policy_class(name)
    sweep = {p.key for p in cls.parameters() if p.sweep}
    combos: list[dict[str, Any]] = [{}]
    for key, value in params.items():
        values = value if key in sweep and isinstance(value, list | tuple) else [value]
        combos = [{**c, key: v} for c in combos for v in values]
    return [cls.from_params(**c) for c in combos]


def parse_policy(spec: str | Policy) -> Policy:
    """Parse ``"mixed:0.5"`` (the first parameter), ``"fresh_real:fraction=0.3"``,
    ``"fully_synthetic"``, ... (or pass a Policy through)."""
    if isinstance(spec, Policy):
        return spec
    name, _, arg = str(spec).partition(":")
    if "." in name:  # a module:Class name, then its parameters
        cls_name, _, arg = arg.partition(":")
        name = f"{name}:{cls_name}"
    cls = policy_class(name)
    if not arg:
        return cls()
    params: dict[str, Any] = {}
    keys = [p.key for p in cls.parameters()]
    for item in arg.split(","):
        key, eq, raw = item.partition("=")
        if not eq:
            if not keys:
                raise InputError(f"policy {spec!r}: {name} takes no number")
            key, raw = keys[0], item
        if not _is_number(raw):
            raise InputError(f"policy {spec!r}: {raw!r} must be a number")
        params[key.strip()] = float(raw)
    return cls.from_params(**params)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
