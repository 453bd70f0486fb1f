"""Contract checks for your own models, policies, metrics and datasets (as scikit-learn's
``check_estimator``).

The retraining loop relies on more than the method names of the protocols: ``fit`` must return
the model, samples must have the data's shape, a model rebuilt from its checkpoint must go on
exactly as the original would, a policy's state must survive a checkpoint, a metric must not
move another metric's number. Break one and a run fails generations later, or worse, resumes to
different numbers. Each ``check_*`` runs a plugin through the loop's own moves on tiny data (a
second or so; neural families with small budgets) and raises :class:`ContractError` on the first
rule it breaks, as one line ``<Class>: <rule>: <what happened>``. It returns the rules passed.

Example (in a plugin's own test suite):
    >>> from autophagy.testing import check, check_model
    >>> check_model(BoxModel, options={"margin": 0.1})  # a class, an instance or a name
    ['constructible', 'protocol', 'fit returns self', ...]
    >>> check_model(LeakyModel)
    ContractError: LeakyModel: state round-trip: sample after load_state_dict differs from the
    original (max |diff| 1.18); state_dict must hold everything sample uses
    >>> check("mylab.extensions:BoxModel")    # the lines ``autophagy check TARGET`` prints

Every built-in family, policy, metric and generated dataset passes them (``tests/test_testing.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from autophagy.data import DATASETS, Dataset, DatasetEntry
from autophagy.errors import ContractError, UnknownName
from autophagy.metrics import METRICS, Metric
from autophagy.models import MODELS
from autophagy.policies import POLICIES, Policy
from autophagy.registry import import_target
from autophagy.testing.datasets import check_dataset
from autophagy.testing.metrics import check_metric
from autophagy.testing.models import check_model
from autophagy.testing.policies import check_policy

__all__ = ["ContractError", "check", "check_dataset", "check_metric", "check_model",
           "check_policy"]


def _kinds(target: str) -> list[tuple[str, Any]]:
    """What ``target`` names: (kind, object) for each registry holding it, or by its type."""
    module, colon, rest = target.partition(":")
    if not colon:
        found = [(kind, target) for kind, reg in (("model", MODELS), ("policy", POLICIES),
                                                   ("metric", METRICS), ("dataset", DATASETS))
                 if target in reg]
        if found:
            return found
        raise UnknownName(f"{target!r} is no registered model, policy, metric or dataset; "
                          "name one ('autophagy list') or give module:attr")
    if module in POLICIES:  # "mixed:0.5", "fresh_real:fraction=0.3"
        return [("policy", target)]
    obj = import_target(f"{module}:{rest.partition(':')[0]}")
    if isinstance(obj, Metric):
        return [("metric", obj)]
    if isinstance(obj, DatasetEntry | Dataset):
        return [("dataset", obj)]
    if isinstance(obj, Policy) or (isinstance(obj, type) and issubclass(obj, Policy)):
        return [("policy", target if rest.count(":") else obj)]
    if all(hasattr(obj, name) for name in ("fit", "sample")):
        return [("model", obj)]
    raise ContractError(target, "kind", f"{type(obj).__name__} is not a model (fit, sample), "
                                        "Policy, Metric or DatasetEntry")


CHECKS: dict[str, Callable[..., list[str]]] = {
    "model": check_model, "policy": check_policy, "metric": check_metric,
    "dataset": check_dataset,
}


def check(target: str, *, options: Mapping[str, Any] | None = None,
          dataset: str | None = None) -> list[str]:
    """Run the right contract check on ``target`` and return lines to print (``autophagy
    check TARGET``).

    ``target`` is a registered name (``"gmm"``, ``"mixed:0.5"``, ``"w2"``, ``"moons"``; a name
    registered as two kinds, like ``gaussian``, is checked as both) or ``module:attr``.
    ``options`` go to a model's constructor, a policy's parameters or a dataset's builder;
    ``dataset`` is the data a model, policy or metric is checked on. Raises
    :class:`ContractError` (one line) on the first broken rule.
    """
    lines = []
    for kind, obj in _kinds(target):
        if kind == "model":
            passed = check_model(obj, dataset, options=options)
        elif kind == "policy":
            passed = check_policy(obj, dataset, params=options)
        elif kind == "metric":
            passed = check_metric(obj, dataset)
        else:
            passed = check_dataset(obj, options=options)
        if passed[-1].startswith("applies: no"):
            lines.append(f"{kind} {target}: does not apply on {dataset or 'moons'}; name a "
                         "dataset it applies to")
            continue
        lines.append(f"{kind} {target}: {len(passed)} rules passed")
        lines += [f"  ok  {rule}" for rule in passed]
    return lines
