"""Where samples come from: a serial link, the simulated device, or a recorded trial.

Every source has one life cycle: ``with source:`` (or ``start()`` / ``stop()``)
brings up what it needs (the simulator process); ``open()`` opens the link and
returns False while it is absent (the runtime retries); ``read(timeout_s)`` returns
the messages that arrived (waiting at most ``timeout_s`` for the first) and raises
``LinkLost`` when the link goes; ``close()`` closes the link. ``ended`` turns True
when the device has ended its stream in order (the simulator wrote its last
sample, the replay reached the end of its file): the runtime then answers what
has arrived and stops. ``output`` is where estimates go (None: nowhere).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from serial import SerialBase, SerialException

from edge.sinks import FrameOutput, FrameWriter
from firmware_bridge.codec import JointSample, Message, StreamDecoder, encode
from firmware_bridge.link import DEFAULT_BAUD, serial_ports
from firmware_bridge.motion_file import read_joint_angles
from firmware_bridge.timestamps import WRAP_US

if TYPE_CHECKING:
    from firmware_bridge.simulator import SimulatorProcess

LINK_ERRORS = (SerialException, OSError)
"""What pyserial raises for a port that is absent or vanished."""

OpenLink = Callable[[str, int, float], SerialBase]
"""Opens a port or pyserial URL at a baud rate with a read timeout (s)."""


class LinkLost(Exception):
    """The link failed while in use (unplugged, device reset); the message says how."""


class SampleSource(Protocol):
    name: str

    @property
    def output(self) -> FrameOutput | None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def open(self) -> bool: ...

    def close(self) -> None: ...

    def read(self, timeout_s: float) -> list[Message]: ...

    def greet_input_side(self, hello: Message) -> None: ...

    def waiting_note(self) -> str: ...

    @property
    def ended(self) -> bool: ...

    @property
    def output_events(self) -> Counter[str]: ...

    @property
    def decoder_errors(self) -> dict[str, int]: ...

    @property
    def sender_minor(self) -> int | None: ...

    def end_stream(self) -> bool: ...


class _Lifecycle:
    """``with source:`` calls start() and stop()."""

    def start(self) -> None:
        """Nothing to bring up beyond the link."""

    def stop(self) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _nonblocking_fd(link: SerialBase) -> int | None:
    """The link's file descriptor when it is a non-blocking POSIX port, else None."""
    try:
        fd = link.fileno()
    except (AttributeError, OSError, ValueError, SerialException):
        return None
    if not isinstance(fd, int) or os.get_blocking(fd):
        return None
    return fd


class SerialSource(_Lifecycle):
    """A device on a serial port or any pyserial URL; estimates back on it or ``out_port``.

    A POSIX port is read with one select and one os.read (no pyserial layers);
    other links through pyserial. An end of file on a ready port is a vanished
    device, as pyserial reports it.
    """

    def __init__(
        self,
        port: str,
        open_link: OpenLink,
        baud: int = DEFAULT_BAUD,
        out_port: str | None = None,
        read_timeout_s: float = 0.05,
        write_timeout_s: float = 0.002,
        output_backoff_s: float = 0.1,
    ) -> None:
        self.name = port
        self.port = port
        self.out_port = out_port
        self.baud = baud
        self.open_link = open_link
        self.read_timeout_s = read_timeout_s
        self.write_timeout_s = write_timeout_s
        self.output_backoff_s = output_backoff_s
        self.output: FrameWriter | None = None
        self.output_events: Counter[str] = Counter()
        """What the output counted (frames dropped, cut or timed out)."""
        self._link: SerialBase | None = None
        self._out: SerialBase | None = None
        self._in_fd: int | None = None
        self._decoder = StreamDecoder()
        self._past_errors: Counter[str] = Counter()

    def open(self) -> bool:
        try:
            self._link = self.open_link(self.port, self.baud, self.read_timeout_s)
            self._out = self._link
            if self.out_port:
                self._out = self.open_link(self.out_port, self.baud, self.read_timeout_s)
            self._out.write_timeout = self.write_timeout_s
        except LINK_ERRORS:  # the port is absent (yet)
            self.close()
            return False
        self._in_fd = _nonblocking_fd(self._link)
        self.output = FrameWriter(
            self._out, _nonblocking_fd(self._out), self.output_backoff_s, self.output_events
        )
        self._past_errors.update(self._decoder.errors)
        self._decoder = StreamDecoder()
        return True

    def waiting_note(self) -> str:
        """What the runtime says while the port is absent."""
        found = ", ".join(serial_ports()) or "none found"
        return f"waiting for {self.port} to appear (serial ports here: {found})"

    def greet_input_side(self, hello: Message) -> None:
        """Also write the host's Hello to the input port when estimates go elsewhere (the
        sensor side then hears it too); a side that does not listen is ignored."""
        if self._out is not self._link and self._link is not None:
            with contextlib.suppress(*LINK_ERRORS):
                self._link.write(encode(hello))

    def close(self) -> None:
        for link in (self._link, self._out):
            if link is not None:
                with contextlib.suppress(*LINK_ERRORS):  # a vanished device is gone either way
                    link.close()
        self._link = self._out = None
        self._in_fd = None
        self.output = None

    def read(self, timeout_s: float) -> list[Message]:
        if self._link is None:
            raise LinkLost("the link is closed")
        try:
            data = self._read_bytes(timeout_s)
        except LINK_ERRORS as exc:
            raise LinkLost(str(exc)) from None
        return self._decoder.feed(data) if data else []

    def _read_bytes(self, timeout_s: float) -> bytes:
        fd = self._in_fd
        if fd is None:
            link = self._link
            assert link is not None  # read() returns before reading when no link is open
            waiting = link.in_waiting
            data = link.read(waiting if waiting else 1)
            if data and not waiting and link.in_waiting:
                data += link.read(link.in_waiting)
            return data
        ready, _, _ = select.select((fd,), (), (), timeout_s)
        if not ready:
            return b""
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return b""
        if not data:
            raise SerialException("the port reports data but returns none (device disconnected?)")
        return data

    @property
    def ended(self) -> bool:
        return False

    def end_stream(self) -> bool:
        """A real device cannot be asked to end its stream."""
        return False

    @property
    def decoder_errors(self) -> dict[str, int]:
        errors = Counter(self._past_errors)
        errors.update(self._decoder.errors)
        return {k: v for k, v in errors.items() if v}

    @property
    def sender_minor(self) -> int | None:
        return self._decoder.sender_minor


class SimulatedSource(SerialSource):
    """firmware_bridge's device simulator in its own process, on a pseudo-terminal.

    ``start()`` launches it; it plays the built-in normative gait at ``rate_hz`` once
    the host has said Hello, for ``duration_s`` (None: until ``end_stream()``).
    ``ended`` turns True once it has written its last sample. ``stop()`` ends the
    process; ``device_report`` then holds its figures (the round trip as the device
    saw it). The simulator keeps figures only, no per-sample records.
    """

    def __init__(
        self,
        rate_hz: float,
        duration_s: float | None,
        open_link: OpenLink,
        baud: int = DEFAULT_BAUD,
    ) -> None:
        super().__init__("", open_link, baud)
        self.rate_hz = rate_hz
        self.duration_s = duration_s
        self.device_report: dict = {}
        self._process: SimulatorProcess | None = None
        self._ended = threading.Event()

    def start(self) -> None:
        """Start the simulator process; raises OSError/TimeoutError when it cannot start."""
        from firmware_bridge.simulator import SimulatorConfig, SimulatorProcess

        config = SimulatorConfig(
            rate_hz=self.rate_hz,
            duration_s=self.duration_s,
            wait_for_host_s=60.0,
            drain_s=0.5,
            keep_records=0,
        )
        self._process = process = SimulatorProcess(config)
        try:
            device_path = process.start()
        except (OSError, TimeoutError, EOFError):
            process.close()
            self._process = None
            raise
        assert device_path is not None  # without a URL the simulator serves a pseudo-terminal
        self.port = self.name = device_path
        threading.Thread(
            target=self._watch, args=(process,), name="simulator-watch", daemon=True
        ).start()

    def _watch(self, process: SimulatorProcess) -> None:
        try:
            process.wait_streamed(None)
        except (RuntimeError, TimeoutError, EOFError, OSError) as exc:
            self.device_report = {"error": str(exc)}
        self._ended.set()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def end_stream(self) -> bool:
        """Ask the simulator to stop sending; ``ended`` follows once it has."""
        if self._process is not None:
            self._process.stop()
        return True

    def stop(self) -> None:
        self.close()
        if self._process is None:
            return
        self._process.stop()
        try:
            report = self._process.join(10.0)
        except (RuntimeError, TimeoutError, EOFError, OSError) as exc:
            self.device_report = {"error": str(exc)}
        else:
            self.device_report = {
                "samples_sent": report.samples_sent,
                "estimates_received": report.estimates_received,
                "answered": report.answered,
                "skipped_reported": report.skipped_reported,
                "lost": report.lost,
                "late": report.late,
                "overruns": report.overruns,
                "round_trip_ms": {
                    "p50": report.latency_ms_p50,
                    "p99": report.latency_ms_p99,
                    "p999": report.latency_ms_p999,
                },
            }
        finally:
            self._process.close()
            self._process = None


class ReplaySource(_Lifecycle):
    """A recorded trial (OpenSim .mot/.sto) played as the device would send it.

    Channels are the subject's ``coordinates`` in radians, in that order (the
    identity sensor mapping); timestamps come from the file's time column, seq
    counts from 0. ``fast`` False plays at the file's own pace (each sample is
    returned when its time, from the start of the replay, has come); True returns
    one sample per read as fast as the loop asks. Raises MotionFileError for a
    file it cannot play.
    """

    def __init__(self, path: str | Path, coordinates: tuple[str, ...], fast: bool = False) -> None:
        self.path = Path(path)
        self.name = f"replay of {self.path}"
        self.fast = fast
        self.output: FrameWriter | None = None
        self.output_events: Counter[str] = Counter()
        time_s, angles = read_joint_angles(self.path, coordinates)
        self.time_s = time_s - time_s[0]
        stamps = np.round(self.time_s * 1e6).astype(np.int64) % WRAP_US
        mask = (1 << len(coordinates)) - 1
        q = angles.astype(np.float32)
        self.samples: list[Message] = [
            JointSample(i, int(stamps[i]), tuple(q[i].tolist()), mask) for i in range(len(stamps))
        ]
        self._next = 0
        self._started_at = 0.0

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1])

    def open(self) -> bool:
        self._started_at = time.perf_counter()
        return True

    def close(self) -> None:
        """Nothing to close: the file was read at construction."""

    def greet_input_side(self, hello: Message) -> None:
        """A recording hears nothing."""

    def waiting_note(self) -> str:
        return f"waiting for {self.name}"

    def read(self, timeout_s: float) -> list[Message]:
        if self._next >= len(self.samples):
            time.sleep(min(timeout_s, 0.01))
            return []
        if self.fast:
            self._next += 1
            return [self.samples[self._next - 1]]
        due = self._started_at + self.time_s[self._next]
        wait = due - time.perf_counter()
        if wait > timeout_s:
            time.sleep(timeout_s)
            return []
        if wait > 0:
            time.sleep(wait)
        now = time.perf_counter() - self._started_at
        end = int(np.searchsorted(self.time_s, now, side="right"))
        batch = self.samples[self._next : max(end, self._next + 1)]
        self._next += len(batch)
        return batch

    @property
    def ended(self) -> bool:
        return self._next >= len(self.samples)

    def end_stream(self) -> bool:
        """Stop the replay here; ``ended`` follows."""
        self._next = len(self.samples)
        return True

    @property
    def decoder_errors(self) -> dict[str, int]:
        return {}

    @property
    def sender_minor(self) -> int | None:
        return None
