"""The sensors as worn today: ``sensors.json`` maps raw channels to OpenSim coordinates.

Kept apart from ``subject.json`` because it changes every time the device is
put on. For each channel: the coordinate it measures (one of
``calib.coordinates.COORDINATES``, or none), a sign, a zero offset and a scale, so that

    q_coordinate = sign * scale * (raw - zero_offset)      [rad, OpenSim's sign]

``zero_offset`` is in raw units (counts, or whatever the device sends) and is
the raw reading during quiet standing, where OpenSim's default pose puts every
coordinate at 0 rad. ``scale`` is rad per raw unit (1 for a device that
already sends radians). Without a sensors file, incoming angles are taken as
OpenSim radians (``SensorMap.identity()``: hip flexion, knee, ankle).

Every map measures the three sagittal coordinates (what an encoder
exoskeleton has); hip adduction and hip rotation (an IMU suit) are optional.
Each coordinate is measured by at most one channel. A file of schema version 1
(channels naming a ``joint``: hip, knee or ankle, the sagittal coordinates) is
still read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calib.coordinates import COORDINATES, SAGITTAL_COORDINATES
from calib.json_file import Fields, dumps_readable, load_json_file

SENSORS_SCHEMA_VERSION = 2
CHANNEL_FIELDS = ("name", "coordinate", "sign", "zero_offset", "scale")
# Schema version 1 named the sagittal coordinates by their joint.
VERSION_1_JOINTS = dict(zip(("hip", "knee", "ankle"), SAGITTAL_COORDINATES))


class SensorError(ValueError):
    """A sensors description or capture is invalid; the message says what to fix."""


@dataclass(frozen=True)
class Channel:
    """One raw channel: its ``name``, the ``coordinate`` it measures (None: unused), sign,
    offset, scale."""

    name: str
    coordinate: str | None
    sign: float = 1.0
    zero_offset: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class SensorMap:
    """Channel -> coordinate mapping: every sagittal coordinate measured by exactly one
    channel, hip adduction and rotation by at most one."""

    channels: tuple[Channel, ...]
    schema_version: int = SENSORS_SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        _validate(self.to_dict())

    @classmethod
    def identity(
        cls, n_channels: int = 3, coordinates: tuple[str, ...] = SAGITTAL_COORDINATES
    ) -> SensorMap:
        """Channels 0, 1, ... measure ``coordinates`` in OpenSim radians, in that order;
        further channels are unused. ``identity(5, COORDINATES)`` is an IMU suit's five."""
        if n_channels < len(coordinates):
            raise SensorError(
                f"identity mapping of {list(coordinates)} needs at least {len(coordinates)} "
                f"channels, got {n_channels}"
            )
        return cls(
            tuple(
                Channel(f"ch{i}", coordinates[i] if i < len(coordinates) else None)
                for i in range(n_channels)
            )
        )

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    @property
    def coordinates(self) -> tuple[str, ...]:
        """The measured coordinates, in ``COORDINATES`` order: the columns of ``to_radians``."""
        measured = {c.coordinate for c in self.channels}
        return tuple(c for c in COORDINATES if c in measured)

    def to_radians(self, raw: Any) -> np.ndarray:
        """Raw readings (..., C) -> OpenSim angles (..., len(coordinates)) in rad, one column
        per measured coordinate in ``COORDINATES`` order (``self.coordinates``)."""
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim == 0 or raw.shape[-1] != len(self.channels):
            raise SensorError(
                f"raw readings must have shape (..., {len(self.channels)}) "
                f"(one value per channel {list(self.channel_names)}), got {raw.shape}"
            )
        columns = self.coordinates
        out = np.empty((*raw.shape[:-1], len(columns)))
        for i, c in enumerate(self.channels):
            if c.coordinate is not None:
                out[..., columns.index(c.coordinate)] = (
                    c.sign * c.scale * (raw[..., i] - c.zero_offset)
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "channels": [
                {
                    "name": c.name,
                    "coordinate": c.coordinate,
                    "sign": c.sign,
                    "zero_offset": c.zero_offset,
                    "scale": c.scale,
                }
                for c in self.channels
            ],
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(dumps_readable(self.to_dict()))

    @classmethod
    def from_dict(cls, data: Any) -> SensorMap:
        data = _upgrade(data)
        _validate(data)
        return cls(
            tuple(
                Channel(
                    name=c["name"],
                    coordinate=c.get("coordinate"),
                    sign=float(c.get("sign", 1.0)),
                    zero_offset=float(c.get("zero_offset", 0.0)),
                    scale=float(c.get("scale", 1.0)),
                )
                for c in data["channels"]
            ),
        )


def load_sensors(path: str | Path) -> SensorMap:
    """Read and validate a ``sensors.json``."""
    return load_json_file(path, SensorMap.from_dict, SensorError, "sensors")


def _upgrade(data: Any) -> Any:
    """A schema-version-1 map (channels naming a sagittal ``joint``) in today's form;
    anything else unchanged (``_validate`` judges it)."""
    if (
        not isinstance(data, dict)
        or data.get("schema_version") != 1
        or not isinstance(data.get("channels"), list)
    ):
        return data
    channels = []
    for i, c in enumerate(data["channels"]):
        if isinstance(c, dict):
            joint = c.get("joint")
            if joint is not None and joint not in VERSION_1_JOINTS:
                raise SensorError(
                    f"field 'channels[{i}].joint': expected one of {list(VERSION_1_JOINTS)} or "
                    f"null (sensors.json schema version 1), got {joint!r}"
                )
            fields = {k: v for k, v in c.items() if k != "joint"}
            coordinate = VERSION_1_JOINTS[joint] if joint is not None else None
            c = {**fields, "coordinate": coordinate}
        channels.append(c)
    return {**data, "schema_version": SENSORS_SCHEMA_VERSION, "channels": channels}


def _validate(data: Any) -> None:
    if not isinstance(data, dict):
        raise SensorError(
            f"expected a JSON object with 'schema_version' and 'channels', got {data!r:.60}"
        )
    sensors = Fields(data, SensorError)
    version = data.get("schema_version")
    if isinstance(version, bool) or version != SENSORS_SCHEMA_VERSION:
        raise sensors.fail(
            "schema_version",
            f"{SENSORS_SCHEMA_VERSION} (or 1, the sagittal form)",
            version,
        )
    channels = sensors.sequence("channels", "a non-empty list", non_empty=True)
    names: set[str] = set()
    measured: list[str] = []
    for i in range(len(channels)):
        channel = channels.mapping(i, allowed=CHANNEL_FIELDS, kind="channel")
        name = channel.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise channel.fail("name", "a unique non-empty string", name)
        names.add(name)
        coordinate = channel.get("coordinate")
        if coordinate is not None and coordinate not in COORDINATES:
            raise channel.fail("coordinate", f"one of {list(COORDINATES)} or null", coordinate)
        if coordinate is not None:
            measured.append(coordinate)
        if "sign" in channel and (sign := channel.number("sign", "+1 or -1")) not in (1.0, -1.0):
            raise channel.fail("sign", "+1 or -1", sign)
        if "zero_offset" in channel:
            channel.number("zero_offset", unit="raw units")
        if "scale" in channel:
            channel.number("scale", unit="rad per raw unit", positive=True)
    repeated = sorted({c for c in measured if measured.count(c) > 1})
    missing = [c for c in SAGITTAL_COORDINATES if c not in measured]
    if repeated or missing:
        raise SensorError(
            f"field 'channels': every sagittal coordinate {list(SAGITTAL_COORDINATES)} must be "
            "measured by exactly one channel, hip_adduction and hip_rotation by at most one; "
            f"got {measured}"
        )
