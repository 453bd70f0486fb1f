"""A validated config from a base dict and ``section__name=value`` overrides: the tests that
check a refused config stops before anything runs share it (downstream, conditional)."""

from __future__ import annotations

import copy
from typing import Any

from autophagy.config import Config, validate


def config_with(base: dict[str, Any], **fields: Any) -> Config:
    """``base`` (deep-copied) with each ``section__name=value`` set, validated."""
    data = copy.deepcopy(base)
    for key, value in fields.items():
        section, name = key.split("__")
        data.setdefault(section, {})[name] = value
    return validate(data)
