"""The committed world spec (`world/world_v2.yaml`): parameters, structure flags and the
target statistics the simulated logs must show, each with its reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.config import ConfigError

SPEC_PATH = Path(__file__).with_name("world_v2.yaml")
FLAGS = ("attribute_tastes", "novelty_search", "personas", "session_need", "exploration")


@dataclass(frozen=True)
class WorldSpec:
    version: int
    flags: dict[str, bool]
    params: dict[str, Any]
    targets: dict[str, tuple[float, float]]
    reasons: dict[str, str]


def load_spec(off: Sequence[str] = (), path: Path = SPEC_PATH) -> WorldSpec:
    """The spec with the structures named in `off` switched off."""
    raw = yaml.safe_load(path.read_text())
    unknown = sorted(set(off) - set(FLAGS))
    if unknown:
        raise ConfigError(f"unknown world structure(s) {unknown}; known: {list(FLAGS)}")
    flags = {name: bool(raw["flags"][name]["value"]) and name not in off for name in FLAGS}
    reasons = {
        name: entry["reason"] for section in ("flags", "parameters", "targets") for name, entry in raw[section].items()
    }
    return WorldSpec(
        version=int(raw["version"]),
        flags=flags,
        params={name: entry["value"] for name, entry in raw["parameters"].items()},
        targets={name: (float(entry["range"][0]), float(entry["range"][1])) for name, entry in raw["targets"].items()},
        reasons=reasons,
    )
