"""Operating-system settings for a loop that must answer within a millisecond.

- Real-time scheduling (SCHED_FIFO) and CPU pinning, both optional, with messages
  that say what to do when the system does not allow them.
- The interpreter's thread switch interval: the log writer and status threads
  share the GIL with the loop; Python's default 5 ms switch interval would let
  one of them hold the loop up for that long, so the runtime shortens it.
- The USB-serial adapter's ``latency_timer`` (FTDI defaults to 16 ms: the chip
  holds received bytes that long before sending them to the host, capping a
  request-response loop near 60 Hz).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

LOOP_SWITCH_INTERVAL_S = 0.0002
"""GIL switch interval while the loop runs: a helper thread delays it by at most this."""

MAX_LATENCY_TIMER_MS = 1


class RealtimeError(RuntimeError):
    """A requested real-time setting is not permitted or not available here."""


def set_realtime_priority(priority: int) -> str:
    """Run this process under SCHED_FIFO at ``priority`` (1..99); returns what was done."""
    if not hasattr(os, "sched_setscheduler"):
        raise RealtimeError(
            f"--rt-priority: real-time scheduling is not available on {sys.platform}"
        )
    lo = os.sched_get_priority_min(os.SCHED_FIFO)
    hi = os.sched_get_priority_max(os.SCHED_FIFO)
    if not lo <= priority <= hi:
        raise RealtimeError(f"--rt-priority must lie in {lo}..{hi} for SCHED_FIFO, got {priority}")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError as exc:
        raise RealtimeError(
            f"--rt-priority {priority}: not permitted ({exc.strerror}). Run as root, grant "
            "the capability (sudo setcap cap_sys_nice+ep $(readlink -f $(which python3))), "
            "or raise the limit (`rtprio` in /etc/security/limits.conf), or omit --rt-priority"
        ) from exc
    return f"SCHED_FIFO priority {priority}"


def pin_to_cpus(cpus: tuple[int, ...]) -> str:
    """Restrict this process to the given CPU cores; returns what was done."""
    if not hasattr(os, "sched_setaffinity"):
        raise RealtimeError(f"--cpu: CPU pinning is not available on {sys.platform}")
    available = sorted(os.sched_getaffinity(0))
    missing = [c for c in cpus if c not in available]
    if missing:
        raise RealtimeError(
            f"--cpu {','.join(map(str, cpus))}: core(s) {missing} are not available to this "
            f"process (available: {available})"
        )
    try:
        os.sched_setaffinity(0, set(cpus))
    except OSError as exc:
        raise RealtimeError(f"--cpu: cannot pin to {list(cpus)} ({exc.strerror})") from exc
    return f"pinned to CPU {','.join(map(str, cpus))}"


def latency_timer_warning(port: str, latency_timer_ms: int | None) -> str | None:
    """A warning with the fix when a USB-serial adapter buffers longer than 1 ms, else None."""
    if latency_timer_ms is None or latency_timer_ms <= MAX_LATENCY_TIMER_MS:
        return None
    tty = os.path.basename(os.path.realpath(port))
    return (
        f"warning: {port} is a USB-serial adapter with latency_timer = {latency_timer_ms} ms: "
        f"it holds incoming bytes up to {latency_timer_ms} ms, which caps a request-response "
        f"loop near {1000 // latency_timer_ms} Hz. Fix: "
        f"echo 1 | sudo tee /sys/bus/usb-serial/devices/{tty}/latency_timer, or for good a udev "
        'rule: ACTION=="add", SUBSYSTEM=="usb-serial", DRIVER=="ftdi_sio", '
        'ATTR{latency_timer}="1"'
    )


class SwitchInterval:
    """Context manager: a short GIL switch interval for the loop's lifetime."""

    def __init__(self, interval_s: float = LOOP_SWITCH_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._saved = sys.getswitchinterval()

    def __enter__(self):
        self._saved = sys.getswitchinterval()
        sys.setswitchinterval(self.interval_s)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setswitchinterval(self._saved)


def run_in_background(niceness: int) -> None:
    """Make the calling thread (or process) an ordinary, lower-priority one: back to
    SCHED_OTHER if it inherited real-time scheduling from the loop, at ``niceness``.
    Linux schedules each thread on its own, so a helper thread of a process under
    --rt-priority would otherwise hold its core against the answer path."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
