"""Protocol version 1.0's Estimate layout, written out by hand from the 1.0 document.

Version 1.1 must stay readable by 1.0 receivers (PROTOCOL.md, "Versions"); these
helpers build the frames a 1.0 host sent and read frames the way a 1.0
receiver did, independently of the table the codecs are generated from.
"""

from __future__ import annotations

import struct
import zlib

from firmware_bridge import protocol as P
from firmware_bridge.codec import Estimate, cobs_decode, cobs_encode


def three_torque_estimate(**fields: int) -> Estimate:
    """A two-muscle, three-torque Estimate (the layout both versions share), with the integer
    header and status fields given in ``fields`` (status, skipped, latency_us,
    activation_age_us)."""
    return Estimate(
        seq=5,
        timestamp_us=6,
        sample_seq=7,
        sample_timestamp_us=8,
        activations=(0.25, 0.5),
        forces=(100.0, 200.0),
        torques=(1.5, -2.0, 0.25),
        **fields,
    )


def as_version_1_0(estimate: Estimate) -> bytes:
    """The wire frame a version 1.0 host sent for ``estimate`` (3 torques): payload byte 17
    reserved, no activation_age_us, minor 0 in the header."""
    m = len(estimate.activations)
    payload = struct.pack(
        f"<IIHHIBB{m}f{m}f3f",
        estimate.sample_seq,
        estimate.sample_timestamp_us,
        estimate.status,
        estimate.skipped,
        estimate.latency_us,
        m,
        0,
        *estimate.activations,
        *estimate.forces,
        *estimate.torques,
    )
    body = (
        struct.pack(
            "<HBBBBHII", P.MAGIC, 1, 0, 0x20, 0, len(payload), estimate.seq, estimate.timestamp_us
        )
        + payload
    )
    return cobs_encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def read_as_version_1_0(wire: bytes) -> tuple:
    """(sample_seq, status, activations, forces, torques) as a version 1.0 receiver reads an
    Estimate frame from a newer sender: its own layout, bytes beyond it ignored."""
    frame = cobs_decode(wire[:-1])
    assert frame[2] == 1 and frame[3] >= 1
    sample_seq, _, status, _, _, m, _ = struct.unpack_from("<IIHHIBB", frame, 16)
    values = struct.unpack_from(f"<{m}f{m}f3f", frame, 34)
    return sample_seq, status, values[:m], values[m : 2 * m], values[2 * m :]
