"""Typed stage configs: dataclasses with help text, YAML files and `--set key=value` overrides.

@dataclass
class SimulateConfig:
    seed: int = option(42, "random seed; the same seed gives the same bytes")

cfg = load_config(SimulateConfig, yaml_path, ["seed=7"])
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from core.errors import AigqError

T = TypeVar("T")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(AigqError):
    """A bad config file, key or value; the message names it."""


def option(default: Any, help: str) -> Any:
    """A config field with a default and help text (mutable defaults are copied)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def aigq_home() -> Path:
    """Root of every artifact: $AIGQ_HOME, default ./artifacts in the project."""
    return Path(os.environ.get("AIGQ_HOME") or PROJECT_ROOT / "artifacts").resolve()


def git_revision() -> str:
    """Short commit of the project checkout, for model cards ("unknown" outside git)."""

    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or "unknown"
        )
    except OSError:
        return "unknown"


def describe(cls: type) -> str:
    """One line per field: name, type, default and help (for `--help`)."""
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        lines.append(f"  {f.name} = {default!r}: {f.metadata.get('help', '')}")
    return "\n".join(lines)


def load_config(cls: type[T], yaml_path: str | Path | None = None, overrides: list[str] | tuple = ()) -> T:
    """Defaults, then the YAML file, then `key=value` overrides (values parsed as YAML; `key.entry=value`
    sets one entry of a mapping key)."""
    values: dict[str, Any] = {}
    if yaml_path:
        path = Path(yaml_path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e.__class__.__name__})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys")
        values.update(loaded)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, _, sub = key.strip().partition(".")
        if sub:  # `--set trl.max_steps=200`: one entry of a mapping key
            if not isinstance(values.get(key, {}), dict):
                raise ConfigError(f"--set {item!r}: {key!r} is not a mapping")
            values.setdefault(key, {})[sub] = yaml.safe_load(raw)
        else:
            values[key] = yaml.safe_load(raw)
    return build(cls, values)


def build(cls: type[T], values: dict[str, Any]) -> T:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} key(s) {unknown}; known: {sorted(fields)}")
    return cls(**{k: _coerce(k, hints[k], v) for k, v in values.items()})


def _coerce(name: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if value is None and type(None) in typing.get_args(hint):
        return None
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {name!r}: expected a mapping, got {value!r}"[:200])
        return dict(value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            value = [v.strip() for v in str(value).split(",") if v.strip()]
        return origin(_coerce(name, args[0], v) for v in value) if args else origin(value)
    if origin is typing.Union or (origin is not None and str(origin) == "types.UnionType"):
        return _coerce(name, args[0], value)
    try:
        if hint is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return hint(value) if hint in (int, float, str, bool) else value
    except (TypeError, ValueError):
        raise ConfigError(f"config key {name!r}: {value!r} is not a valid {getattr(hint, '__name__', hint)}") from None
