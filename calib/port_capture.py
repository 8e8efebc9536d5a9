"""Record a standing capture straight from the device over its serial link.

The device streams ``JointSample`` frames (firmware_bridge's protocol); this
module opens the link with ``firmware_bridge.link.open_link``, greets the
device with a host ``Hello`` (a device may wait for one before streaming) and
keeps, for ``seconds``, every sample whose channels are all valid and finite.
Values are positional: channel i of a sample is channel i of the sensors
template (or ch0, ch1, ... without one, for a device that sends the three
sagittal or all five coordinates), so the result feeds
``calib.zeroing.zero_sensors`` like a CSV capture.
"""

from __future__ import annotations

import math
import time

import numpy as np

from calib.coordinates import COORDINATES, SAGITTAL_COORDINATES
from calib.sensors import SensorError, SensorMap
from calib.zeroing import Capture
from firmware_bridge import protocol
from firmware_bridge.codec import Hello, JointSample, StreamDecoder, encode
from firmware_bridge.link import DEFAULT_BAUD, LinkError, open_link
from firmware_bridge.progress import progress_bar


def capture_from_port(
    port: str,
    seconds: float,
    template: SensorMap | None = None,
    baud: int | None = None,
    progress: bool = True,
) -> Capture:
    """Samples (N, C) read from ``port`` (a device path or pyserial URL) for ``seconds`` s."""
    if not (math.isfinite(seconds) and seconds > 0):
        raise SensorError(f"--seconds must be a positive number, got {seconds}")
    names = template.channel_names if template is not None else None
    untemplated_counts = (len(SAGITTAL_COORDINATES), len(COORDINATES))
    try:
        link = open_link(port, baud or DEFAULT_BAUD, timeout=0.05)
    except LinkError as exc:
        raise SensorError(str(exc)) from None
    rows: list[tuple[float, ...]] = []
    rejected = 0
    decoder = StreamDecoder()
    bar = progress_bar(total=seconds, desc="standing capture", unit="s", disable=not progress)
    try:
        link.write(
            encode(Hello(seq=0, timestamp_us=0, role=protocol.ROLE_HOST, sample_rate_hz=0.0))
        )
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            for message in decoder.feed(link.read(4096)):
                if not isinstance(message, JointSample):
                    continue
                if names is None and len(message.values) in untemplated_counts:
                    names = tuple(f"ch{i}" for i in range(len(message.values)))
                if names is None or len(message.values) != len(names):
                    expected = (
                        f"{len(names)} ({', '.join(names)})"
                        if names is not None
                        else "3 or 5 without a sensors template"
                    )
                    raise SensorError(
                        f"the device sends {len(message.values)} channels, expected "
                        f"{expected}; pass --sensors-in with its channels"
                    )
                all_valid = message.valid_mask & ((1 << len(names)) - 1) == (1 << len(names)) - 1
                if all_valid and all(math.isfinite(v) for v in message.values):
                    rows.append(tuple(float(v) for v in message.values))
                else:
                    rejected += 1
            bar.update(min(elapsed, seconds) - bar.n)
    except OSError as exc:
        raise SensorError(f"serial link {port!r} failed during the capture: {exc}") from None
    finally:
        bar.close()
        link.close()
    if not rows:
        raise SensorError(
            f"no valid joint samples from {port!r} in {seconds:g} s "
            f"({rejected} samples with invalid channels); is the device streaming?"
        )
    assert names is not None  # a row is kept only once the channel names are known
    return Capture(tuple(names), np.array(rows))
