"""Where estimates go: frames back to the device, and the estimate log.

``FrameWriter`` writes protocol frames to the device without ever waiting for a
device that stopped reading (counted instead). ``EstimateLog`` is a writer process
behind a pipe, so the loop never waits on disk and never waits for the
interpreter while rows are formatted. (The third sink, the live
status line, is edge.status.StatusReporter.)

The loop hands each estimate over as one float64 row (``EstimateLog.submit``, a
non-blocking write into the pipe); the writer process formats and writes it.
Nothing is lost unless the pipe is full, and every row lost that way is counted
(``overflowed``) and reported in the run summary. Formats: OpenSim storage
(``.sto``, readable by OpenSim 4 and train/'s reader) or CSV (any other suffix).

Columns: ``time`` (s, device clock, the predicted instant), ``sample_time``
(s, device clock of the sample answered), ``seq``, ``status``, ``skipped``,
``latency_us``, ``activation_age_us`` (device time from the end of the window the
network saw to the sample answered), then ``<muscle>_activation``, ``<muscle>_force``
(N) per muscle, and ``<coordinate>_moment`` (N·m) per joint.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import signal
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Protocol

import numpy as np
from serial import SerialBase, SerialTimeoutException

from edge.realtime import run_in_background
from firmware_bridge.codec import Message, encode

FIXED_COLUMNS = (
    "time",
    "sample_time",
    "seq",
    "status",
    "skipped",
    "latency_us",
    "activation_age_us",
)
_ROWS_FIELD_DIGITS = 12
_FLUSH_PERIOD_S = 0.5
_LOG_NICENESS = 5
_MAX_PIPE_BYTES = 1 << 20
"""Linux lets any process raise a pipe's buffer to 1 MiB (/proc/sys/fs/pipe-max-size)."""


class FrameOutput(Protocol):
    """Where a source's estimates go: ``FrameWriter``, or a wrapper around one."""

    def send(self, message: Message) -> bool: ...

    def send_frame(self, frame: bytes | np.ndarray) -> bool: ...


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

    def __init__(
        self, link: SerialBase, fd: int | None, backoff_s: float, events: Counter[str]
    ) -> None:
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
            # ndarray is a buffer; numpy's stubs declare that only for Python >= 3.12
            written = os.write(self.fd, frame)  # type: ignore[arg-type]
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


def _row_format(columns: tuple[str, ...], sto: bool) -> str:
    return ("\t" if sto else ",").join(
        ["%.6f", "%.6f"]
        + ["%d"] * (len(FIXED_COLUMNS) - 2)
        + ["%.9g"] * (len(columns) - len(FIXED_COLUMNS))
    ) + "\n"


def _write_rows(path: str, columns: tuple[str, ...], sto: bool, rows_in, report) -> None:
    """The log's process: append the rows arriving on ``rows_in`` (float64 records of
    ``len(columns)`` values) to ``path`` until the other end closes, flushing every
    ``_FLUSH_PERIOD_S``; then report (rows written, error or None) on ``report``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the run ends
    run_in_background(_LOG_NICENESS)
    fd = rows_in.fileno()  # read raw: the records carry no framing
    record = 8 * len(columns)
    row_format = _row_format(columns, sto)
    written, error, pending = 0, None, b""
    last_flush = time.monotonic()
    try:
        log = open(path, "a", encoding="ascii", newline="\n")  # noqa: SIM115
    except OSError as exc:
        report.send((0, f"writing {path} failed: {exc.strerror}"))
        return
    with log:
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            pending += chunk
            whole = len(pending) // record * record
            if error is None and whole:
                rows = np.frombuffer(pending[:whole], dtype=np.float64).reshape(-1, len(columns))
                try:
                    log.write("".join(row_format % tuple(r) for r in rows.tolist()))
                    written += len(rows)
                except OSError as exc:
                    error = f"writing {path} failed: {exc.strerror}"
            pending = pending[whole:]
            if error is None and time.monotonic() - last_flush >= _FLUSH_PERIOD_S:
                try:
                    log.flush()
                except OSError as exc:
                    error = f"writing {path} failed: {exc.strerror}"
                last_flush = time.monotonic()
    report.send((written, error))


class EstimateLog:
    """Writes estimate rows to ``path`` from a process of its own; use as a context manager.

    The loop fills the one row ``new_row()`` returns and ``submit``s it: one
    non-blocking write of its bytes into a pipe (all of it or nothing: a row is less
    than PIPE_BUF), so the loop never waits on the log and shares no interpreter lock
    with its formatting. A row that finds the pipe full (the writer has fallen
    ``queue_size`` rows behind) is counted in ``overflowed``. ``close()`` ends the
    writer, which writes every row that reached the pipe; ``rows_written`` and
    ``error`` then say what it did.
    """

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
        self.rows_written = 0
        self.overflowed = 0
        self.error: str | None = None
        self._rows_field_offset = 0
        try:
            with open(self.path, "w", encoding="ascii", newline="\n") as header:
                self._write_header(header)
        except OSError as exc:
            raise LogError(f"cannot write the estimate log {self.path}: {exc.strerror}") from exc
        self._row = np.zeros(len(self.columns))
        rows_in, self._rows_out = os.pipe()
        os.set_blocking(self._rows_out, False)
        with contextlib.suppress(AttributeError, OSError):  # Linux: room for queue_size rows
            fcntl.fcntl(
                self._rows_out,
                fcntl.F_SETPIPE_SZ,
                min(queue_size * self._row.nbytes, _MAX_PIPE_BYTES),
            )
        context = multiprocessing.get_context("spawn")
        self._report, child_report = context.Pipe(duplex=False)
        reader = Connection(rows_in, writable=False)  # a form the spawned process receives
        self._process = context.Process(
            target=_write_rows,
            name="estimate-log",
            daemon=True,
            args=(str(self.path), self.columns, self.is_sto, reader, child_report),
        )
        self._process.start()
        reader.close()
        child_report.close()

    def _write_header(self, out) -> None:
        if self.is_sto:
            out.write(f"{self.path.stem}\nversion=1\n")
            self._rows_field_offset = out.tell() + len("nRows=")
            out.write(f"nRows={0:0{_ROWS_FIELD_DIGITS}d}\n")
            out.write(f"nColumns={len(self.columns)}\ninDegrees=no\nendheader\n")
            out.write("\t".join(self.columns) + "\n")
        else:
            out.write(",".join(self.columns) + "\n")

    def new_row(self) -> np.ndarray:
        """The row to fill and submit (the same buffer every time: submit copies it out)."""
        return self._row

    def submit(self, row: np.ndarray) -> bool:
        """Hand one row to the writer without waiting; False (and counted) when it is
        ``queue_size`` rows behind."""
        try:
            # ndarray is a buffer; numpy's stubs declare that only for Python >= 3.12
            os.write(self._rows_out, row)  # type: ignore[arg-type]
        except BlockingIOError:
            self.overflowed += 1
            return False
        return True

    def close(self) -> None:
        """Let the writer write every row it was handed, fix the .sto row count."""
        if self._rows_out < 0:
            return
        os.close(self._rows_out)
        self._rows_out = -1
        try:
            self.rows_written, self.error = self._report.recv()
        except EOFError:
            self.error = (
                f"the writer of {self.path} ended early (exit code {self._process.exitcode})"
            )
        self._process.join()
        if self.is_sto and self.error is None:
            try:
                with open(self.path, "r+", encoding="ascii", newline="\n") as out:
                    out.seek(self._rows_field_offset)
                    out.write(f"{self.rows_written:0{_ROWS_FIELD_DIGITS}d}")
            except OSError as exc:
                self.error = f"closing {self.path} failed: {exc.strerror}"

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
