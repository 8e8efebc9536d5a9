"""`SimulatorProcess`: a `DeviceSimulator` in a spawned process of its own.

A device is a machine of its own: in a separate process the simulator shares no
GIL, threads or real-time priority with the host under test. The parent and the
child speak over a pipe: the child sends "ready" (with the pty path), "streamed"
once its last sample is written, then "report" or "error"; the parent sends
"stop" (end the run early) and "close" (release the link).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from firmware_bridge.link import DEFAULT_BAUD, Link, LinkError, PseudoTerminal, open_link
from firmware_bridge.simulator.config import SimulatorConfig
from firmware_bridge.simulator.device import DeviceSimulator
from firmware_bridge.simulator.report import SimulatorReport


def _process_main(
    config: SimulatorConfig, url: str | None, baud: int, connection: Connection
) -> None:
    """The child: open the link, say "ready", run, send the report, keep the link until told."""
    # Ctrl-C reaches the whole process group: the parent decides when this run ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A device is a machine of its own: it does not share a host's real-time priority.
    with contextlib.suppress(AttributeError, OSError):
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    try:
        link: Link = PseudoTerminal() if url is None else open_link(url, baud, timeout=0.01)
    except OSError as exc:
        connection.send(("error", f"cannot open the link: {exc}"))
        return
    closing = threading.Event()
    try:
        simulator = DeviceSimulator(
            config, link, on_streamed=lambda: connection.send(("streamed", None))
        )
        connection.send(("ready", getattr(link, "device_path", None)))
        listener = threading.Thread(
            target=_listen_to_parent, args=(connection, simulator, closing), daemon=True
        )
        listener.start()
        connection.send(("report", simulator.run()))
        # Keep the link open until the parent's host has stopped reading it.
        closing.wait()
    except Exception as exc:
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        link.close()


def _listen_to_parent(
    connection: Connection, simulator: DeviceSimulator, closing: threading.Event
) -> None:
    """The parent's requests: "stop" ends the run early; "close" (or a parent gone) also
    lets the link go."""
    try:
        while True:
            request = connection.recv()
            if request == "stop":
                simulator.stop()
            elif request == "close":
                break
    except (EOFError, OSError):
        simulator.stop()
    closing.set()


class SimulatorProcess:
    """A DeviceSimulator in its own process (spawned, so it shares no GIL or threads).

    `start()` returns the pseudo-terminal path the host should open (url None) or
    None (url given); `wait_streamed()` returns once the last sample is written;
    `join()` returns the SimulatorReport with its records. The link stays open
    after the run until `close()` (or leaving the `with` block), so the host can
    stop reading first instead of seeing the port vanish.
    """

    def __init__(
        self, config: SimulatorConfig, url: str | None = None, baud: int = DEFAULT_BAUD
    ) -> None:
        self.config = config
        self.url = url
        self.baud = baud
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._streamed = False
        self._outcome: tuple[str, object] | None = None

    def start(self, timeout: float = 30.0) -> str | None:
        """Spawn the process; the pty path once it is ready (None with a url). Raises
        LinkError when it cannot open the link, TimeoutError when it does not start."""
        context = multiprocessing.get_context("spawn")
        connection, child = context.Pipe()
        self._connection = connection
        process = self._process = context.Process(
            target=_process_main,
            name="bridge-sim",
            args=(self.config, self.url, self.baud, child),
            daemon=True,
        )
        process.start()
        child.close()
        if not connection.poll(timeout):
            process.kill()
            raise TimeoutError(f"the simulator process did not start within {timeout} s")
        kind, value = connection.recv()
        if kind == "error":
            raise LinkError(value)
        return value

    def stop(self) -> None:
        """Ask the device to end its run early; the report covers what was sent."""
        if self._connection is not None:
            with contextlib.suppress(OSError, ValueError):
                self._connection.send("stop")

    def wait_streamed(self, timeout: float | None = None) -> None:
        """Until the device has written its last sample (or its run ended another way)."""
        self._receive_until(lambda: self._streamed, timeout, "the end of the stream")

    def join(self, timeout: float | None = None) -> SimulatorReport:
        """The run's report; RuntimeError when the run failed, TimeoutError after `timeout` s."""
        self._receive_until(lambda: self._outcome is not None, timeout, "simulator report")
        assert self._outcome is not None
        kind, value = self._outcome
        if kind == "error" or not isinstance(value, SimulatorReport):
            raise RuntimeError(f"simulator failed: {value}")
        return value

    def _receive_until(self, done: Callable[[], bool], timeout: float | None, what: str) -> None:
        """Read the child's messages ("streamed", then "report" or "error") until done()."""
        connection = self._connection
        if connection is None or self._process is None:
            raise RuntimeError("start() the simulator process first")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not connection.poll(left):
                raise TimeoutError(f"no {what} within {timeout} s")
            kind, value = connection.recv()
            self._streamed = True  # every message after "ready" comes at or after the end
            if kind != "streamed":
                self._outcome = (kind, value)

    def close(self) -> None:
        """Release the link and end the process."""
        if self._connection is not None:
            with contextlib.suppress(OSError, ValueError):
                self._connection.send("close")
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.join(5.0)
            if self._process.is_alive():
                self._process.kill()
            self._process = None

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
