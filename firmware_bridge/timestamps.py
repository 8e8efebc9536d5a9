"""Unwrap the device's 32-bit microsecond timestamps into a monotonic 64-bit count.

A microcontroller's micros() wraps every 2^32 µs (71.6 min); the runtime runs
for hours. Successive timestamps are assumed to lie less than 2^31 µs (35.8 min)
apart, so the signed difference modulo 2^32 is the true step.
"""

from __future__ import annotations

WRAP_US = 1 << 32
_HALF_WRAP_US = 1 << 31


class TimestampUnwrapper:
    """`unwrap(t_u32) -> int` µs since the first timestamp's epoch, continuing across wraps.

    A timestamp slightly older than the previous one (reordering, jitter) maps to
    a slightly smaller value rather than to a jump of a whole wrap.
    """

    def __init__(self) -> None:
        self._last_raw: int | None = None
        self._last_us = 0

    def unwrap(self, timestamp_us: int) -> int:
        if self._last_raw is None:
            self._last_raw = timestamp_us
            self._last_us = timestamp_us
            return timestamp_us
        step = (timestamp_us - self._last_raw) % WRAP_US
        if step >= _HALF_WRAP_US:
            step -= WRAP_US
        self._last_raw = timestamp_us
        self._last_us += step
        return self._last_us
