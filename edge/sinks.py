"""Where estimates go: frames back to the device, and the estimate log.

``FrameWriter`` writes protocol frames to the device without ever waiting for a
device that stopped reading (counted instead). ``EstimateLog`` is a writer thread
behind a bounded queue, so the loop never waits on disk: the loop appends each row
(no lock, no wake-up) and the writer drains what has gathered every
``_DRAIN_PERIOD_S``, so it competes with the loop for the interpreter fifty times a
second instead of at every sample. (The third sink, the live
status line, is edge.status.StatusReporter.)

The loop hands each estimate over as one float64 row (``EstimateLog.submit``, a
non-blocking append); the writer thread formats and writes it. Nothing is lost unless
the queue is full, and every row lost that way is counted (``overflowed``) and
reported in the run summary. Formats: OpenSim storage (``.sto``, readable by
OpenSim 4 and train/'s reader) or CSV (any other suffix).

Columns: ``time`` (s, device clock, the predicted instant), ``sample_time``
(s, device clock of the sample answered), ``seq``, ``status``, ``skipped``,
``latency_us``, ``activation_age_us`` (device time from the end of the window the
network saw to the sample answered), then ``<muscle>_activation``, ``<muscle>_force`` (N) per muscle, and
``<coordinate>_moment`` (N·m) per joint.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from pathlib import Path

import numpy as np
from serial import SerialBase, SerialTimeoutException

from firmware_bridge.codec import Message, encode

FIXED_COLUMNS = ("time", "sample_time", "seq", "status", "skipped", "latency_us",
                 "activation_age_us")
_ROWS_FIELD_DIGITS = 12
_FLUSH_PERIOD_S = 0.5
_DRAIN_PERIOD_S = 0.02


class FrameWriter:
    """Writes protocol frames to a link; never waits for a device that stops reading.

    A POSIX port (``fd`` given) is written with one non-blocking ``os.write``: a full
    output buffer drops the frame (counted ``output_dropped``), a partial write
    leaves a cut frame the device's decoder skips (``output_partial``). Links without
    a file descriptor (pyserial URLs) are written through pyserial with its write
    timeout; after a timeout (``output_timeout``) frames are dropped for
    ``backoff_s``. A link that fails for good raises (pyserial's SerialException or
    OSError): the caller treats the link as lost.
    """

    def __init__(self, link: SerialBase, fd: int | None, backoff_s: float,
                 events: Counter[str]) -> None:
        self.link = link
        self.fd = fd
        self.backoff_s = backoff_s
        self.events = events
        self._blocked_until = 0.0

    def send(self, message: Message) -> bool:
        """Encode and write one message; False when it was dropped (and counted)."""
        return self.send_frame(encode(message))

    def send_frame(self, frame: bytes | np.ndarray) -> bool:
        """Write one encoded frame (bytes, or a uint8 array); False when it was dropped (and
        counted)."""
        if self._blocked_until and time.monotonic() < self._blocked_until:
            self.events["output_dropped"] += 1
            return False
        if self.fd is None:
            try:
                self.link.write(bytes(frame))
            except SerialTimeoutException:  # the device stopped reading
                self.events["output_timeout"] += 1
                self._blocked_until = time.monotonic() + self.backoff_s
                return False
            return True
        try:
            written = os.write(self.fd, frame)
        except BlockingIOError:
            self.events["output_dropped"] += 1
            return False
        if written < len(frame):
            self.events["output_partial"] += 1
            return False
        return True


class LogError(OSError):
    """The estimate log cannot be written; the message names the file and the reason."""


def log_columns(muscles: tuple[str, ...], coordinates: tuple[str, ...]) -> tuple[str, ...]:
    """Column names of an estimate log, in row order."""
    return (
        FIXED_COLUMNS
        + tuple(f"{m}_activation" for m in muscles)
        + tuple(f"{m}_force" for m in muscles)
        + tuple(f"{c}_moment" for c in coordinates)
    )


class EstimateLog:
    """Writes estimate rows to ``path`` from its own thread; use as a context manager."""

    def __init__(
        self,
        path: str | Path,
        muscles: tuple[str, ...],
        coordinates: tuple[str, ...],
        queue_size: int = 65536,
    ) -> None:
        self.path = Path(path)
        self.columns = log_columns(tuple(muscles), tuple(coordinates))
        self.n_muscles = len(muscles)
        self.is_sto = self.path.suffix.lower() == ".sto"
        self.queue_size = queue_size
        self._rows: deque[np.ndarray] = deque()
        self._closing = threading.Event()
        self.rows_written = 0
        self.overflowed = 0
        self.error: str | None = None
        self._rows_field_offset = 0
        try:
            self._file = open(self.path, "w", encoding="ascii", newline="\n")  # noqa: SIM115
        except OSError as exc:
            raise LogError(f"cannot write the estimate log {self.path}: {exc.strerror}") from exc
        self._write_header()
        self._row_format = ("\t" if self.is_sto else ",").join(
            ["%.6f", "%.6f"] + ["%d"] * (len(FIXED_COLUMNS) - 2)
            + ["%.9g"] * (len(self.columns) - len(FIXED_COLUMNS))
        ) + "\n"
        self._thread = threading.Thread(target=self._run, name="estimate-log", daemon=True)
        self._thread.start()

    def _write_header(self) -> None:
        if self.is_sto:
            self._file.write(f"{self.path.stem}\nversion=1\n")
            self._rows_field_offset = self._file.tell() + len("nRows=")
            self._file.write(f"nRows={0:0{_ROWS_FIELD_DIGITS}d}\n")
            self._file.write(f"nColumns={len(self.columns)}\ninDegrees=no\nendheader\n")
            self._file.write("\t".join(self.columns) + "\n")
        else:
            self._file.write(",".join(self.columns) + "\n")

    def new_row(self) -> np.ndarray:
        """A fresh row to fill and submit (rows are handed over, never reused)."""
        return np.empty(len(self.columns))

    def submit(self, row: np.ndarray) -> bool:
        """Queue one row without waiting; False (and counted) when the queue is full."""
        if len(self._rows) >= self.queue_size:
            self.overflowed += 1
            return False
        self._rows.append(row)  # deque.append is atomic: no lock, and nobody is woken
        return True

    def _run(self) -> None:
        last_flush = time.monotonic()
        closing = False
        while not closing:
            closing = self._closing.wait(_DRAIN_PERIOD_S)
            while self._rows:
                row = self._rows.popleft()
                if self.error is None:
                    try:
                        self._file.write(self._row_format % tuple(row.tolist()))
                        self.rows_written += 1
                    except OSError as exc:
                        self.error = f"writing {self.path} failed: {exc.strerror}"
            now = time.monotonic()
            if now - last_flush >= _FLUSH_PERIOD_S and self.error is None:
                try:
                    self._file.flush()
                except OSError as exc:
                    self.error = f"writing {self.path} failed: {exc.strerror}"
                last_flush = now

    def close(self) -> None:
        """Write every queued row, fix the .sto row count, close the file."""
        if self._file.closed:
            return
        self._closing.set()
        self._thread.join()
        try:
            if self.is_sto:
                self._file.seek(self._rows_field_offset)
                self._file.write(f"{self.rows_written:0{_ROWS_FIELD_DIGITS}d}")
            self._file.close()
        except OSError as exc:
            self.error = f"closing {self.path} failed: {exc.strerror}"

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
