"""Shared pieces of the runtime tests: a bundle, and a device on the far side of a real pty.

``PtyDevice`` stands in for the firmware until firmware_bridge.simulator's
DeviceSimulator can be driven sample by sample: it plays given angles as
JointSample frames at a rate over a real pseudo-terminal, records exactly what it
sent and every Estimate it read back, and can inject garbage, pause (stop sending
with the link open), pull the cable (close the pty; the port's path is a symlink,
as /dev/serial/by-id is) and plug it back in (a new pty behind the same path), and
send its frames as an older protocol minor version would.
"""

from __future__ import annotations

import contextlib
import functools
import os
import struct
import tempfile
import threading
import time
import tty
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from firmware_bridge.codec import (
    Estimate,
    JointSample,
    StreamDecoder,
    cobs_decode,
    cobs_encode,
    encode,
)


@functools.lru_cache(maxsize=1)
def runtime_bundle():
    """The shipped default bundle when it is there, else an untrained one exported once."""
    from edge.bundle import BundleError, default_bundle_path, load_bundle

    try:
        return load_bundle(default_bundle_path())
    except BundleError:
        pass
    import torch

    from calib import default_subject
    from train.export import export_bundle
    from train.model import ModelConfig, build_model

    torch.manual_seed(0)
    subject = default_subject()
    mean = np.array([0.2, 0, 0, -0.5, 0, 0, 0, 0, 0.0])
    std = np.array([0.3, 2, 40, 0.4, 4, 80, 0.15, 2, 40.0])
    model = build_model(ModelConfig(n_muscles=len(subject.muscle_names)), mean, std).eval()
    out = Path(tempfile.mkdtemp(prefix="edge-runtime-bundle-"))
    return export_bundle(model, out / "bundle", subject=subject)


def gait_angles(n: int, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Device timestamps (µs, int) and walking-like angles (n, 3) float32 rad."""
    t = np.arange(n) / rate_hz
    phase = 2 * np.pi * t / 1.235
    q = np.stack(
        [0.15 + 0.35 * np.cos(phase), -0.55 + 0.5 * np.cos(phase + 0.9), 0.12 * np.sin(2 * phase)],
        axis=1,
    ).astype(np.float32)
    return np.round(t * 1e6).astype(np.int64) + 1000, q


def with_minor(wire: bytes, minor: int | None) -> bytes:
    """A wire frame re-stamped with another protocol minor version (None: as it is)."""
    if minor is None:
        return wire
    body = bytearray(cobs_decode(wire[:-1])[:-4])
    body[3] = minor
    return cobs_encode(bytes(body) + struct.pack("<I", zlib.crc32(body))) + b"\x00"


@dataclass
class PtyDevice:
    """A device thread on the master side of a pty whose slave is reached via ``path``."""

    timestamps_us: np.ndarray
    angles: np.ndarray
    rate_hz: float
    garbage_at: dict[int, bytes] = field(default_factory=dict)
    unplug_at: int | None = None
    unplugged_s: float = 0.4
    pause_at: int | None = None
    paused_s: float = 0.6
    protocol_minor: int | None = None
    sent: list[tuple[int, int, tuple[float, ...], int]] = field(default_factory=list)
    estimates: list[Estimate] = field(default_factory=list)
    other: list[object] = field(default_factory=list)
    other_at: list[float] = field(default_factory=list)
    paused: tuple[float, float] | None = None
    overrun: int = 0

    def __post_init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="edge-pty-"))
        self.path = str(self.directory / "ttyDEVICE")
        self._decoder = StreamDecoder()
        self._master = self._plug()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _plug(self) -> int:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        slave_path = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        if os.path.lexists(self.path):
            os.unlink(self.path)
        os.symlink(slave_path, self.path)
        return master

    def start(self) -> PtyDevice:
        self._thread.start()
        return self

    def wait(self, timeout: float = 60.0) -> None:
        self._done.wait(timeout)
        assert self._done.is_set(), "the device did not finish in time"

    def _drain(self) -> None:
        try:
            while True:
                data = os.read(self._master, 65536)
                if not data:
                    return
                for m in self._decoder.feed(data):
                    if isinstance(m, Estimate):
                        self.estimates.append(m)
                    else:
                        self.other.append(m)
                        self.other_at.append(time.perf_counter())
        except (BlockingIOError, OSError):
            return

    def _run(self) -> None:
        start = time.perf_counter() + 0.05
        for i in range(len(self.timestamps_us)):
            if i == self.pause_at:  # the device stops sending; the link stays open
                paused_from = time.perf_counter()
                while time.perf_counter() < paused_from + self.paused_s:
                    self._drain()
                    time.sleep(0.002)
                self.paused = (paused_from, time.perf_counter())
                start = time.perf_counter() - i / self.rate_hz
            if i == self.unplug_at:
                self._drain()
                os.close(self._master)
                os.unlink(self.path)
                time.sleep(self.unplugged_s)
                self._master = self._plug()
                start = time.perf_counter() - i / self.rate_hz
            target = start + i / self.rate_hz
            while time.perf_counter() < target:
                self._drain()
                time.sleep(0.0002)
            values = tuple(float(v) for v in self.angles[i])
            mask = 0b111
            ts = int(self.timestamps_us[i]) % (1 << 32)
            try:
                if i in self.garbage_at:
                    os.write(self._master, self.garbage_at[i])
                os.write(
                    self._master,
                    with_minor(encode(JointSample(i, ts, values, mask)), self.protocol_minor),
                )
            except BlockingIOError:  # nobody reads the port: the frame is lost, as on a UART
                self.overrun += 1
                continue
            self.sent.append((i, ts, values, mask))
        end = time.perf_counter() + 5.0
        while time.perf_counter() < end:
            self._drain()
            if self.estimates and self.sent and self.estimates[-1].sample_seq == self.sent[-1][0]:
                break
            time.sleep(0.002)
        self._done.set()

    def close(self) -> None:
        if self._thread.ident is not None:  # started: let it finish its last estimate
            self._done.wait(5.0)
        with contextlib.suppress(OSError):
            os.close(self._master)
