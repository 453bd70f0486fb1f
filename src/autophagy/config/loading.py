"""Loading configs: presets, YAML files and ``--set`` / ``--sweep`` overrides, validated at once.

Also :func:`config_field`, the one place where library errors (named by argument) become config
errors (named by field).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from autophagy.config.schema import Config, SubFieldError, _format, _set_path, validate  # noqa: F401
from autophagy.errors import ArgumentError, ConfigError, UnknownName

DEFAULT_PRESET = "toy-flow"
"""What ``autophagy run`` runs with no options: the paper's 2-D experiment with a flow."""


@contextmanager
def config_field(section: str) -> Iterator[None]:
    """Name library errors raised inside by the config field they come from (``data``,
    ``model``, ``eval``): the one place where library terms become config terms."""
    try:
        yield
    except ConfigError:
        raise
    except UnknownName as err:
        raise ConfigError(f"{section}.name: {err}") from None
    except ArgumentError as err:
        fields = getattr(Config.model_fields.get(section), "annotation", None)
        known = getattr(fields, "model_fields", {})
        where = section if section.startswith("--") else f"{section}.{err.argument}"  # a flag
        if fields is not None and err.argument not in known and err.argument != "options":
            where = f"{section}.options.{err.argument}"
        raise ConfigError(f"{where}: {err.detail}") from None
    except MemoryError as err:  # a size no machine holds (data.n_train: 10000000000000)
        raise ConfigError(f"{section}: {err}; is a size too large?") from None
    except ValueError as err:
        message = str(err)
        head = section.split(".")[0]
        named = message if message.startswith((f"{head}.", f"{head}:")) else f"{section}: {message}"
        raise ConfigError(named) from None


def preset_dir() -> Path:
    return Path(str(resources.files("autophagy.config") / "presets"))


def preset_names() -> list[str]:
    return sorted(p.stem for p in preset_dir().glob("*.yaml"))


def load_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--config: no such file {str(path)!r}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"--config: {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {str(path)!r} must hold a mapping of fields")
    return data


def apply_override(data: dict[str, Any], assignment: str, *, flag: str = "--set") -> None:
    """Apply ``key.sub=value`` (value parsed as YAML: ``[0, 0.5]``, ``true``, ``3``)."""
    key, value = _assignment(assignment, flag)
    _set_path(data, key, value, flag=flag)


def apply_sweep(data: dict[str, Any], assignment: str) -> None:
    """Add ``--sweep key.sub=[v1, v2]`` to the config's ``sweep`` block."""
    key, values = _assignment(assignment, "--sweep")
    if not isinstance(values, list):
        raise ConfigError(
            f"--sweep: {key!r} needs a list of values, e.g. --sweep {key}=[{values!r}, ...]"
        )
    sweep = data.setdefault("sweep", {})
    if not isinstance(sweep, dict):
        raise ConfigError("--sweep: the config's sweep is not a mapping of field: [values]")
    sweep[key] = values


def _assignment(assignment: str, flag: str) -> tuple[str, Any]:
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"{flag}: expected key=value (e.g. loop.generations=10), got {assignment!r}"
        )
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(
    path: Path | None = None,
    *,
    preset: str | None = None,
    overrides: list[str] = (),
    sweeps: list[str] = (),
) -> Config:
    """Build a validated :class:`Config` from a preset and/or file, then ``--set`` overrides and
    ``--sweep`` additions."""
    data: dict[str, Any] = {}
    if preset is not None:
        if preset not in preset_names():
            raise ConfigError(
                f"--preset: unknown preset {preset!r}; choose from: {', '.join(preset_names())}"
            )
        data = load_yaml(preset_dir() / f"{preset}.yaml")
    if path is not None:
        data = _merge(data, load_yaml(path))
    for assignment in overrides:
        apply_override(data, assignment)
    for assignment in sweeps:
        apply_sweep(data, assignment)
    return validate(data)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out
