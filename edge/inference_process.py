"""The network in a process of its own: nothing it does holds the answer path's interpreter.

A thread shares the interpreter lock with the answer path: whenever it runs Python
(copying the window in, the output out) and whenever the operating system parks it
while it holds the lock, a sample that arrives waits. ``InferenceProcess`` runs the
same inline worker (edge.inference.InferenceWorker, fallback chain included) in a
spawned process with its own interpreter, at a lower priority, and exchanges
windows and outputs with it over a socket pair: one message each way per network
run, the output read without waiting when it is there.

It offers the answer path what the thread worker does: ``submit``, ``latest``,
``degraded``, ``failure``, ``errors``, ``replaced``, ``close``, ``threaded``; ``pid``
is the process (a benchmark can stop it to stall the network).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import struct
import sys
from collections import Counter
from pathlib import Path
from typing import TextIO

import numpy as np

from edge.backends.base import Backend, BackendError
from edge.inference import InferenceWorker, NetworkOutput, OutputPair
from edge.realtime import run_in_background

_REQUEST = struct.Struct("<dq")  # window end (s, device clock), history generation
_RESULT = struct.Struct("<dqBI")  # the same, degraded, backend failures so far
_READY, _OUTPUT, _ERROR = b"R", b"A", b"E"
START_TIMEOUT_S = 120.0


def _serve(bundle_dir: str, backend_name: str, niceness: int, connection) -> None:
    """The child: load the bundle and backend, then answer windows until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the run ends
    run_in_background(niceness)
    from edge.backends import backend_loader
    from edge.bundle import load_bundle

    try:
        bundle = load_bundle(bundle_dir)
        load, fallback = backend_loader(bundle, sys.stderr)
        worker = InferenceWorker(
            load(backend_name),
            fallback,
            bundle.input_shape,
            bundle.manifest.n_muscles,
            threaded=False,
            log=sys.stderr,
        )
    except Exception as exc:
        connection.send_bytes(_ERROR + f"{type(exc).__name__}: {exc}".encode())
        return
    x = np.zeros(bundle.input_shape, dtype=np.float32)
    connection.send_bytes(_READY)
    while True:
        try:
            message = connection.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        window_end_s, generation = _REQUEST.unpack_from(message)
        x.reshape(-1)[:] = np.frombuffer(message, dtype=np.float32, offset=_REQUEST.size)
        try:
            worker.submit(x, window_end_s, generation)
        except Exception as exc:
            connection.send_bytes(_ERROR + f"{type(exc).__name__}: {exc}".encode())
            return
        latest = worker.latest
        assert latest is not None  # the unthreaded worker publishes its output within submit
        connection.send_bytes(
            _OUTPUT
            + _RESULT.pack(window_end_s, generation, worker.degraded, worker.errors["backend"])
            + latest[0].activations.tobytes()
        )


class InferenceProcess:
    """The network off the answer path, in a spawned process (see the module's text)."""

    threaded = True

    def __init__(
        self, bundle_dir: Path, backend: Backend, niceness: int = 10, log: TextIO | None = None
    ) -> None:
        """``backend``: the backend loaded here, whose name the process loads for itself (it
        stays here only to be named)."""
        self.backend = backend
        self.log = log if log is not None else sys.stderr
        self.published = 0
        self.replaced = 0
        self.degraded = False
        self.failure: BaseException | None = None
        self.errors: Counter[str] = Counter()
        self._latest: OutputPair | None = None
        self._busy = False
        self._pending: tuple[bytes, float, int] | None = None
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            name="inference",
            daemon=True,
            args=(str(bundle_dir), backend.name, niceness, child),
        )
        self._process.start()
        child.close()
        if not self._connection.poll(START_TIMEOUT_S):
            self.close()
            raise BackendError(f"the inference process did not start within {START_TIMEOUT_S:g} s")
        reply = self._connection.recv_bytes()
        if reply[:1] != _READY:
            self.close()
            raise BackendError(
                f"the inference process could not load the backend: "
                f"{reply[1:].decode(errors='replace')}"
            )
        self.pid = self._process.pid

    def submit(self, x: np.ndarray, window_end_s: float, generation: int) -> None:
        """Hand over one window; while the network is busy only the newest one waits."""
        if self._busy:
            if self._pending is not None:
                self.replaced += 1
            self._pending = (x.tobytes(), window_end_s, generation)
            return
        self._send(x.tobytes(), window_end_s, generation)

    def _send(self, window: bytes, window_end_s: float, generation: int) -> None:
        try:
            self._connection.send_bytes(_REQUEST.pack(window_end_s, generation) + window)
        except OSError as exc:
            self.failure = RuntimeError(f"the inference process is gone ({exc})")
            return
        self._busy = True

    @property
    def latest(self) -> OutputPair | None:
        """The newest output pair, after taking in an output that has arrived."""
        if self._busy and self._connection.poll(0):
            self._receive()
        return self._latest

    def _receive(self) -> None:
        try:
            reply = self._connection.recv_bytes()
        except (EOFError, OSError):
            self.failure = RuntimeError(
                f"the inference process ended (exit code {self._process.exitcode})"
            )
            return
        self._busy = False
        if reply[:1] != _OUTPUT:
            self.failure = RuntimeError(reply[1:].decode(errors="replace"))
            return
        window_end_s, generation, degraded, failures = _RESULT.unpack_from(reply, 1)
        activations = np.frombuffer(reply, dtype=np.float64, offset=1 + _RESULT.size).copy()
        self.degraded = bool(degraded)
        self.errors["backend"] = failures
        newest = NetworkOutput(generation, window_end_s, activations)
        self._latest = (newest, None if self._latest is None else self._latest[0])
        self.published += 1
        if self._pending is not None:
            self._send(*self._pending)
            self._pending = None

    def close(self) -> None:
        """Tell the process to stop, and wait for it (killed after 10 s)."""
        with contextlib.suppress(OSError):
            self._connection.send_bytes(b"")
        self._process.join(10.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()
