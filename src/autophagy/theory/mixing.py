"""How a generation's training set is made, in the terms the closed forms use.

Why here and not in :mod:`autophagy.policies`: the theory is pure numpy/scipy and sits below every
other layer, so it cannot know the policy classes. Instead a policy *declares* the scheme it
follows (:meth:`autophagy.policies.Policy.mixing`) and the closed forms and simulations read that
declaration; nothing in the theory or the report matches policy names. The synthetic count lives
here once, and the policies count through it, so theory and loop can never count differently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from autophagy.errors import InputError

Anchor = Literal["real", "none", "past", "fresh"]

SCHEMES: dict[str, Anchor] = {
    "mixed": "real",
    "fully_synthetic": "none",
    "accumulate": "past",
    "fresh_real": "fresh",
}
"""The schemes the closed forms cover, by the name a scheme is written with in the theory API."""


@dataclass(frozen=True)
class Mixing:
    """A generation's training set: what it keeps (``anchor``) plus ``n_synthetic(n)`` draws.

    ``anchor``: ``"real"``, all n real points (Bertrand et al.'s Algorithm 1); ``"none"``, nothing
    (fully synthetic, n draws); ``"past"``, every earlier training point (accumulate);
    ``"fresh"``, ``n_fresh(n)`` new draws from the truth (the fresh-data loop). ``ratio`` is the
    synthetic-to-real ratio lambda (``real`` and ``past``), ``fraction`` the fresh share.
    """

    anchor: Anchor
    ratio: float = 1.0
    fraction: float = 0.5

    def __post_init__(self):
        if self.anchor not in SCHEMES.values():
            raise InputError(f"anchor must be one of {', '.join(SCHEMES.values())}, "
                             f"got {self.anchor!r}")

    @property
    def scheme(self) -> str:
        """The scheme's name (``mixed``, ``fully_synthetic``, ``accumulate``, ``fresh_real``)."""
        return next(name for name, anchor in SCHEMES.items() if anchor == self.anchor)

    @property
    def label(self) -> str:
        """Legend text, as the policy that declares the scheme writes it."""
        if self.anchor == "real":
            return f"mixed λ={self.ratio:g}"
        if self.anchor == "past":
            return "accumulate" if self.ratio == 1 else f"accumulate λ={self.ratio:g}"
        if self.anchor == "fresh":
            return f"fresh_real {self.fraction:.0%}"
        return "fully_synthetic"

    def n_fresh(self, n: int) -> int:
        """Fresh real draws a generation (``fresh`` only): at least one."""
        return max(1, math.floor(self.fraction * n)) if self.anchor == "fresh" else 0

    def n_synthetic(self, n: int) -> int:
        """Synthetic draws a generation for n real points."""
        if self.anchor in ("real", "past"):
            return math.floor(self.ratio * n)
        if self.anchor == "none":
            return n
        return n - self.n_fresh(n)

    @classmethod
    def parse(cls, spec: Any, lam: float | None = None, fraction: float | None = None) -> Mixing:
        """``"mixed"``, ``"mixed:0.5"``, ``"fresh_real:0.3"``, a :class:`Mixing`, or any object
        with a ``mixing()`` method (a policy) that declares one; ``lam`` and ``fraction`` set the
        parameter of a bare name."""
        fixed = isinstance(spec, Mixing) or hasattr(spec, "mixing") or ":" in str(spec)
        if fixed and (lam is not None or fraction is not None):
            raise InputError(f"policy {spec!r} already fixes its parameter; drop lam/fraction")
        if isinstance(spec, Mixing):
            return spec
        if hasattr(spec, "mixing"):
            mixing = spec.mixing()
            if mixing is None:
                raise InputError(f"policy {getattr(spec, 'name', spec)!r} has no closed form or "
                                 f"simulation; choose from: {', '.join(SCHEMES)}")
            return mixing
        name, _, arg = str(spec).partition(":")
        if name not in SCHEMES:
            raise InputError(f"policy {name!r} has no closed form or simulation; "
                             f"choose from: {', '.join(SCHEMES)}")
        anchor = SCHEMES[name]
        if arg:
            number = float(arg.partition("=")[2] or arg)
            lam, fraction = (None, number) if anchor == "fresh" else (number, None)
        return cls(anchor, *_values(name, anchor, lam, fraction))


def check_ratio(value: object, name: str) -> float:
    """A synthetic-to-real ratio lambda of policy ``name``: a finite number >= 0, or a one-line
    error (the policies and their schemes share this check)."""
    if isinstance(value, bool) or not (isinstance(value, int | float) and math.isfinite(value)
                                       and value >= 0):
        raise InputError(f"lambda must be a finite number >= 0 for {name}, got {value!r}")
    return float(value)


def _values(name: str, anchor: str, lam: float | None,
            fraction: float | None) -> tuple[float, float]:
    ratio = check_ratio(1.0 if lam is None else lam, name)
    frac = 0.5 if fraction is None else float(fraction)
    if anchor == "fresh" and not 0 < frac <= 1:
        raise InputError(f"fraction must be in (0, 1] for {name}, got {fraction!r}")
    return float(ratio), frac
