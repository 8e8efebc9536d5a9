"""`DeviceSimulator`: the device side of a link, run blocking or in a background thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

from firmware_bridge.link import Link, LinkError
from firmware_bridge.simulator.config import SimulatorConfig
from firmware_bridge.simulator.plan import AngleSource, planned_samples
from firmware_bridge.simulator.report import SimulatorReport
from firmware_bridge.simulator.session import Session


class DeviceSimulator:
    """The device side of a `Link` (a `PseudoTerminal`, a pyserial port).

    progress(n) is called as samples are played; on_streamed() once the last
    sample has been written (before the drain), so a host can tell the orderly
    end of the stream from a device gone silent.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        link: Link,
        progress: Callable[[int], None] | None = None,
        on_streamed: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.link = link
        self.progress = progress
        self.on_streamed = on_streamed
        self._stop = threading.Event()
        self._host_heard = threading.Event()
        self._thread: threading.Thread | None = None
        self._report: SimulatorReport | None = None
        self._error: BaseException | None = None
        self._source = AngleSource(config)

    # -- life cycle -----------------------------------------------------------------------
    def run(self) -> SimulatorReport:
        """Play the whole configuration (or until `stop`), blocking; returns the report."""
        return self._run()

    def start(self) -> None:
        """Play in a background thread; `join` returns the report."""
        self._thread = threading.Thread(target=self._run_in_thread, name="bridge-sim", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> SimulatorReport:
        """The report of a `start`ed run once it ends; raises what the run raised, or
        TimeoutError while it is still playing after `timeout` s."""
        if self._thread is None:
            raise RuntimeError("join() before start()")
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the simulator is still running after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._report is not None
        return self._report

    def stop(self) -> None:
        """Stop sending early; the report covers what was sent."""
        self._stop.set()

    def _run_in_thread(self) -> None:
        try:
            self._report = self._run()
        except BaseException as exc:
            self._error = exc

    # -- the device -----------------------------------------------------------------------
    def _run(self) -> SimulatorReport:
        session = Session(self.config, self.link, self._stop, self._host_heard)
        reader = threading.Thread(target=session.read_loop, name="bridge-sim-reader", daemon=True)
        reader.start()
        try:
            session.send_hello(reply_requested=1)
            session.wait_for_host()
            elapsed_s = session.stream(planned_samples(self.config, self._source), self.progress)
            if self.on_streamed is not None:
                self.on_streamed()
            session.drain()
        finally:
            session.reading.clear()
            reader.join(timeout=2.0)
        if session.link_error is not None:
            raise LinkError(f"the link failed while simulating: {session.link_error}")
        return session.report(elapsed_s)
