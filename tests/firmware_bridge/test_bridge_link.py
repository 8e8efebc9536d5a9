"""Links: pyserial URLs, a raw pseudo-terminal, the USB latency timer, timestamp unwrapping."""

import os

import pytest

from firmware_bridge.codec import Heartbeat, StreamDecoder, encode
from firmware_bridge.link import LinkError, PseudoTerminal, open_link, usb_serial_latency_timer_ms
from firmware_bridge.timestamps import WRAP_US, TimestampUnwrapper


def test_pseudo_terminal_carries_every_byte_value_both_ways():
    payload = bytes(range(256)) * 4  # includes 0x00, 0x0A, 0x0D, 0x11, 0x13, 0x7F: raw mode
    with PseudoTerminal() as pty:
        host = open_link(pty.device_path, timeout=0.05)
        try:
            assert pty.write(payload) == len(payload)
            got = b""
            while len(got) < len(payload):
                chunk = host.read(4096)
                assert chunk, "the host side received nothing"
                got += chunk
            assert got == payload
            host.write(payload[::-1])
            got = b""
            while len(got) < len(payload):
                got += pty.read(4096)
            assert got == payload[::-1]
        finally:
            host.close()


def test_loop_url_round_trips_a_frame():
    port = open_link("loop://", timeout=0.05)
    frame = encode(Heartbeat(seq=1, timestamp_us=2, role=1))
    port.write(frame)
    assert StreamDecoder().feed(port.read(len(frame))) == [Heartbeat(seq=1, timestamp_us=2, role=1)]
    port.close()


def test_open_link_names_the_port_it_cannot_open():
    with pytest.raises(LinkError, match="/dev/does-not-exist"):
        open_link("/dev/does-not-exist")


def test_latency_timer_is_none_where_not_applicable():
    assert usb_serial_latency_timer_ms("socket://localhost:1") is None
    with PseudoTerminal() as pty:
        assert usb_serial_latency_timer_ms(pty.device_path) is None


def test_latency_timer_reads_sysfs_of_the_resolved_tty(tmp_path, monkeypatch):
    from firmware_bridge import link

    sysfs = tmp_path / "devices"
    (sysfs / "ttyUSB7").mkdir(parents=True)
    (sysfs / "ttyUSB7" / "latency_timer").write_text("16\n")
    device = tmp_path / "ttyUSB7"
    device.touch()
    alias = tmp_path / "by-id-adapter"
    os.symlink(device, alias)
    monkeypatch.setattr(link, "USB_SERIAL_SYSFS", sysfs)
    assert usb_serial_latency_timer_ms(str(alias)) == 16


def test_unwrapper_continues_across_the_32_bit_wrap_and_tolerates_reordering():
    unwrap = TimestampUnwrapper()
    start = WRAP_US - 2500
    raw = [(start + k * 1000) % WRAP_US for k in range(6)]
    assert [unwrap.unwrap(t) for t in raw] == [start + k * 1000 for k in range(6)]
    assert unwrap.unwrap(raw[-1] - 300) == start + 5000 - 300  # a late, older stamp
    many = TimestampUnwrapper()
    values = [many.unwrap((k * 1_000_000_000) % WRAP_US) for k in range(20)]  # 5 wraps
    assert values == [k * 1_000_000_000 for k in range(20)]
