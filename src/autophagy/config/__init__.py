"""Configs: the validated schema (one section a stage), YAML and ``--set`` loading, presets.

Everything here is checked before a run directory exists, so a typo fails in one line.
"""

from autophagy.config.loading import (
    DEFAULT_PRESET,
    apply_override,
    apply_sweep,
    config_field,
    load_config,
    load_yaml,
    preset_dir,
    preset_names,
)
from autophagy.config.schema import (
    NOT_SWEPT,
    Config,
    DataConfig,
    EvalConfig,
    LoopConfig,
    ModelConfig,
    RunConfig,
    validate,
)
from autophagy.errors import ConfigError

__all__ = [
    "DEFAULT_PRESET", "NOT_SWEPT", "Config", "ConfigError", "DataConfig", "EvalConfig",
    "LoopConfig", "ModelConfig", "RunConfig", "apply_override", "apply_sweep", "config_field",
    "load_config", "load_yaml", "preset_dir", "preset_names", "validate",
]
