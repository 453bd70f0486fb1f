"""How each generation's training set is built from real data and the previous model's samples.

Each policy is a small frozen dataclass that describes itself (:mod:`autophagy.policies.base`):
its parameters, what it needs, how the report draws it, and the closed-form scheme it follows.
The classic loops live in :mod:`~autophagy.policies.classic`, reward curation in
:mod:`~autophagy.policies.curated` (with its rewards in :mod:`~autophagy.policies.rewards`); a new
policy is one file and one :data:`POLICIES` registration.
"""

from autophagy.policies.base import Parameter, Policy, State, parameter
from autophagy.policies.classic import Accumulate, FreshReal, FullySynthetic, Mixed
from autophagy.policies.curated import Curated
from autophagy.policies.registry import (
    POLICIES,
    make_policy,
    parse_policy,
    policy_class,
    policy_grid,
)

__all__ = [
    "POLICIES", "Accumulate", "Curated", "FreshReal", "FullySynthetic", "Mixed", "Parameter",
    "Policy", "State", "make_policy", "parameter", "parse_policy", "policy_class", "policy_grid",
]
