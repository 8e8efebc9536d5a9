"""Open the serial link: any pyserial URL or device path, or a pseudo-terminal pair for tests.

`open_link` returns a pyserial object; `PseudoTerminal` gives the simulator the
controlling side of a pty (same `read`/`write` calls) and the host a real tty
path to open with `open_link`, so the host's serial code runs unchanged.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import tty
from pathlib import Path
from typing import Protocol

import serial
from serial.tools import list_ports

DEFAULT_BAUD = 2_000_000
"""bit/s. A UART at 8N1 carries baud / 10 bytes/s: 200 kB/s here, which holds a 1 kHz
stream of Estimates of ten muscles and five torques (144 B each) with 28 % to spare;
921,600 bit/s would hold 640 Hz (PROTOCOL.md, "Link budget")."""
USB_SERIAL_SYSFS = Path("/sys/bus/usb-serial/devices")


class LinkError(OSError):
    """A link that cannot be opened or used; the message names the port and the cause."""


class Link(Protocol):
    """What both ends of the wire need of a link: a pyserial port or a `PseudoTerminal`.

    `read` returns what arrived (b"" once its timeout passes); `write` returns the
    bytes taken (pyserial may return None: all of them).
    """

    def read(self, size: int = ...) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def close(self) -> None: ...


def open_link(url_or_path: str, baud: int = DEFAULT_BAUD, timeout: float | None = 0.01):
    """A pyserial port for a device path (/dev/ttyACM0, /dev/pts/3) or any pyserial URL
    (socket://host:port, rfc2217://..., loop://, spy://...). `timeout` (s) bounds each read."""
    try:
        return serial.serial_for_url(url_or_path, baudrate=baud, timeout=timeout, write_timeout=1.0)
    except (serial.SerialException, ValueError, OSError) as exc:
        raise LinkError(f"cannot open serial link {url_or_path!r} at {baud} baud: {exc}") from None


def serial_ports() -> list[str]:
    """The serial ports pyserial finds on this machine (device paths, sorted)."""
    return sorted(port.device for port in list_ports.comports())


def not_a_serial_port(path: str) -> str | None:
    """What an existing ``path`` is when it cannot be a serial port, else None.

    A serial port is a character device that is a terminal (/dev/ttyUSB0,
    /dev/ttyACM0, a pseudo-terminal). A missing path also gives None: the device
    may be plugged in later.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path} cannot be examined ({exc.strerror})"
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISBLK, "a block device (a disk)"),
    )
    for test, kind in kinds:
        if test(mode):
            return f"{path} is {kind}, not a serial port"
    if not stat.S_ISCHR(mode):
        return f"{path} is not a device file, not a serial port"
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except PermissionError:
        return (
            f"{path}: permission denied; add your user to the group that owns it "
            f"(often `sudo usermod -aG dialout $USER`, then log in again)"
        )
    except OSError:
        return None  # busy or absent for a moment: opening it later says why
    try:
        if not os.isatty(fd):
            return f"{path} is a character device that is not a terminal, not a serial port"
    finally:
        os.close(fd)
    return None


class PseudoTerminal:
    """A pty pair in raw mode (8-bit clean, no echo, no line editing).

    This object reads and writes the controlling side; the host opens `device_path`.
    The other side is held open here too, so a host that closes and reopens the
    path does not end the link. Writes never block: what the pty cannot take now
    is reported by the return value (as a UART's overrun would lose it).
    """

    def __init__(self) -> None:
        self._controller, self._terminal = os.openpty()
        tty.setraw(self._terminal)
        os.set_blocking(self._controller, False)
        self.device_path = os.ttyname(self._terminal)
        self.timeout = 0.01

    def write(self, data: bytes) -> int:
        try:
            return os.write(self._controller, data)
        except BlockingIOError:
            return 0

    def read(self, size: int = 4096) -> bytes:
        """Up to `size` bytes, waiting at most `timeout` s for the first."""
        ready, _, _ = select.select([self._controller], [], [], self.timeout)
        if not ready:
            return b""
        try:
            return os.read(self._controller, size)
        except (BlockingIOError, InterruptedError):
            return b""

    def close(self) -> None:
        for fd in (self._controller, self._terminal):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def usb_serial_latency_timer_ms(port: str) -> int | None:
    """The Linux USB-serial adapter's latency timer (ms) behind `port`, or None.

    FTDI-style adapters hold received bytes up to this long (16 ms by default)
    before passing them on, which dominates round-trip latency; 1 ms is usual for
    control loops (echo 1 > /sys/bus/usb-serial/devices/ttyUSB0/latency_timer).
    None for URLs, non-USB ports and other systems.
    """
    if "://" in port:
        return None
    name = os.path.basename(os.path.realpath(port))
    try:
        return int((USB_SERIAL_SYSFS / name / "latency_timer").read_text().strip())
    except (OSError, ValueError):
        return None
