"""The grid of cells a config describes: policies x their parameter grids x swept fields x seeds.

A cell's id and label come from its coordinates alone, so the same config always names its cells
the same way, and a resumed run finds each cell's folder again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from autophagy.config import Config
from autophagy.policies import Policy, policy_grid


@dataclass(frozen=True)
class CellSpec:
    """One cell's coordinates in the grid: a policy with its parameters, the values of the swept
    fields (``(("data.n_train", 100),)``), and a seed."""

    policy: Policy
    seed: int
    swept: tuple[tuple[str, Any], ...] = ()

    @property
    def cell_id(self) -> str:
        parts = [self.policy.cell_tag]
        parts += [f"{_short(path, self.swept)}{_id_value(v)}" for path, v in self.swept]
        return "-".join([*parts, f"seed{self.seed}"])

    @property
    def label(self) -> str:
        fields = ", ".join(
            f"{_short(path, self.swept)}={_label_value(v)}" for path, v in self.swept
        )
        return f"{self.policy.label}, {fields}" if fields else self.policy.label

    def config(self, base: Config) -> Config:
        """The cell's own config: ``base`` with the swept values set."""
        return base.with_overrides(dict(self.swept)) if self.swept else base

    def info(self) -> dict[str, Any]:
        """What the store records of the cell: every parameter and swept field becomes a column."""
        return {
            "cell": self.cell_id,
            "label": self.label,
            "policy": self.policy.name,
            "lambda": self.policy.params.get("lambda", self.policy.lam),
            "params": self.policy.params,
            "sweep": dict(self.swept),
            "seed": self.seed,
        }


def _short(path: str, swept: tuple[tuple[str, Any], ...]) -> str:
    """A swept field's name in ids and legends: its last part, unless two swept fields share it."""
    last = path.rsplit(".", 1)[-1]
    clash = sum(p.rsplit(".", 1)[-1] == last for p, _ in swept) > 1
    return path if clash else last


def _label_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "x".join(_label_value(v) for v in value)
    return str(value)


def _id_value(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "_", _label_value(value)).strip("_") or "_"


def sweep_combinations(config: Config) -> list[tuple[tuple[str, Any], ...]]:
    """Every combination of the swept values, in the config's order (one empty one if none)."""
    combos: list[tuple[tuple[str, Any], ...]] = [()]
    for path, values in config.sweep.items():
        combos = [(*c, (path, v)) for c in combos for v in values]
    return combos


def expand_grid(config: Config) -> list[CellSpec]:
    """Policies x their parameter grids x swept fields x seeds, in the config's order, without
    repeats."""
    cells: dict[str, CellSpec] = {}
    for name, params in config.loop.policies.items():
        for policy in policy_grid(name, params):
            for swept in sweep_combinations(config):
                for seed in config.seed:
                    spec = CellSpec(policy, seed, swept)
                    cells.setdefault(spec.cell_id, spec)
    return list(cells.values())


def cell_configs(config: Config) -> list[Config]:
    """The distinct configs the cells run (one per combination of swept values)."""
    return [config.with_overrides(dict(c)) if c else config for c in sweep_combinations(config)]


def make_batches(config: Config, cells: list[CellSpec]) -> list[list[CellSpec]]:
    """The cells in groups of at most ``run.batch`` that train together: cells with the same
    swept values (so the same model shape), in grid order."""
    size = config.run.batch
    by_config: dict[tuple, list[CellSpec]] = {}
    for spec in cells:
        by_config.setdefault(spec.swept, []).append(spec)
    return [group[i : i + size] for group in by_config.values()
            for i in range(0, len(group), size)]
