"""The sensors as worn today: ``sensors.json`` maps raw channels to OpenSim joint angles.

Kept apart from ``subject.json`` because it changes every time the device is
put on. For each channel: the joint it measures (or none), a sign, a zero
offset and a scale, so that

    q_joint = sign * scale * (raw - zero_offset)      [rad, OpenSim coordinate]

``zero_offset`` is in raw units (counts, or whatever the device sends) and is
the raw reading during quiet standing, where OpenSim's default pose puts every
coordinate at 0 rad. ``scale`` is rad per raw unit (1 for a device that
already sends radians). Without a sensors file, incoming angles are taken as
OpenSim radians (``SensorMap.identity()``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calib.json_file import load_json_file
from calib.subject import JOINT_NAMES

SENSORS_SCHEMA_VERSION = 1
CHANNEL_FIELDS = ("name", "joint", "sign", "zero_offset", "scale")


class SensorError(ValueError):
    """A sensors description or capture is invalid; the message says what to fix."""


@dataclass(frozen=True)
class Channel:
    """One raw channel: its ``name``, the ``joint`` it measures (None: unused), sign, offset, scale."""

    name: str
    joint: str | None
    sign: float = 1.0
    zero_offset: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class SensorMap:
    """Channel -> joint mapping; every joint in ``JOINT_NAMES`` measured by exactly one channel."""

    channels: tuple[Channel, ...]
    schema_version: int = SENSORS_SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        _validate(self.to_dict())

    @classmethod
    def identity(cls, n_channels: int = 3) -> SensorMap:
        """Channels 0, 1, 2 are hip, knee, ankle in OpenSim radians; further channels unused."""
        if n_channels < 3:
            raise SensorError(f"identity mapping needs at least 3 channels, got {n_channels}")
        return cls(
            tuple(Channel(f"ch{i}", JOINT_NAMES[i] if i < 3 else None) for i in range(n_channels))
        )

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def to_radians(self, raw: Any) -> np.ndarray:
        """Raw readings (..., C) -> OpenSim joint angles (..., 3) in rad (hip, knee, ankle)."""
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim == 0 or raw.shape[-1] != len(self.channels):
            raise SensorError(
                f"raw readings must have shape (..., {len(self.channels)}) "
                f"(one value per channel {list(self.channel_names)}), got {raw.shape}"
            )
        out = np.empty(raw.shape[:-1] + (3,))
        for i, c in enumerate(self.channels):
            if c.joint is not None:
                out[..., JOINT_NAMES.index(c.joint)] = (
                    c.sign * c.scale * (raw[..., i] - c.zero_offset)
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "channels": [
                {
                    "name": c.name,
                    "joint": c.joint,
                    "sign": c.sign,
                    "zero_offset": c.zero_offset,
                    "scale": c.scale,
                }
                for c in self.channels
            ],
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Any) -> SensorMap:
        _validate(data)
        return cls(
            tuple(
                Channel(
                    name=c["name"],
                    joint=c["joint"],
                    sign=float(c.get("sign", 1.0)),
                    zero_offset=float(c.get("zero_offset", 0.0)),
                    scale=float(c.get("scale", 1.0)),
                )
                for c in data["channels"]
            ),
            schema_version=data["schema_version"],
        )


def load_sensors(path: str | Path) -> SensorMap:
    """Read and validate a ``sensors.json``."""
    return load_json_file(path, SensorMap.from_dict, SensorError, "sensors")


def _finite(value: Any, where: str, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SensorError(f"field '{where}': expected {expected}, got {value!r}")
    return float(value)


def _validate(data: Any) -> None:
    if not isinstance(data, dict):
        raise SensorError(
            f"expected a JSON object with 'schema_version' and 'channels', got {data!r:.60}"
        )
    version = data.get("schema_version")
    if isinstance(version, bool) or version != SENSORS_SCHEMA_VERSION:
        raise SensorError(
            f"field 'schema_version': expected {SENSORS_SCHEMA_VERSION}, got {version!r}"
        )
    channels = data.get("channels")
    if not isinstance(channels, list) or not channels:
        raise SensorError(f"field 'channels': expected a non-empty list, got {channels!r:.60}")
    names: set[str] = set()
    joints: list[str] = []
    for i, c in enumerate(channels):
        where = f"channels[{i}]"
        if not isinstance(c, dict):
            raise SensorError(f"field '{where}': expected an object, got {c!r:.60}")
        unknown = sorted(set(c) - set(CHANNEL_FIELDS))
        if unknown:
            raise SensorError(
                f"field '{where}.{unknown[0]}' is not a channel field; "
                f"expected one of {list(CHANNEL_FIELDS)}"
            )
        name = c.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise SensorError(
                f"field '{where}.name': expected a unique non-empty string, got {name!r}"
            )
        names.add(name)
        joint = c.get("joint")
        if joint is not None and joint not in JOINT_NAMES:
            raise SensorError(
                f"field '{where}.joint': expected one of {list(JOINT_NAMES)} or null, got {joint!r}"
            )
        if joint is not None:
            joints.append(joint)
        sign = _finite(c.get("sign", 1.0), f"{where}.sign", "+1 or -1")
        if sign not in (1.0, -1.0):
            raise SensorError(f"field '{where}.sign': expected +1 or -1, got {sign!r}")
        _finite(c.get("zero_offset", 0.0), f"{where}.zero_offset", "a finite number (raw units)")
        scale = _finite(
            c.get("scale", 1.0), f"{where}.scale", "a positive number (rad per raw unit)"
        )
        if scale <= 0:
            raise SensorError(
                f"field '{where}.scale': expected a positive number (rad per raw unit), got {scale!r}"
            )
    if sorted(joints) != sorted(JOINT_NAMES):
        raise SensorError(
            f"field 'channels': every joint {list(JOINT_NAMES)} must be measured by exactly one "
            f"channel, got {joints}"
        )
