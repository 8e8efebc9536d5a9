"""Estimate frames packed in one compiled call: the host's per-sample path.

``EstimatePacker(n_muscles, n_torques).pack(...)`` writes the bytes
``encode(Estimate(...))`` writes (a test holds them equal), header, payload, CRC,
COBS and delimiter, into a buffer it owns, without a message object, struct
formats or intermediate bytes: a few microseconds instead of the general
encoder's tens. Where each field goes comes from the protocol table
(``protocol.py``) when the packer is made; the kernel only copies bytes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from firmware_bridge import protocol as P
from firmware_bridge.codec import ProtocolError


def _crc_table() -> np.ndarray:
    """CRC-32/ISO-HDLC (reflected 0xEDB88320) lookup table, one entry per byte value."""
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
        table[byte] = crc
    return table


_CRC_TABLE = _crc_table()


@njit(cache=True)
def _pack(
    values, offsets, sizes, activations, forces, torques, floats, float_offset, crc_table, body, out
):  # pragma: no cover - compiled
    """Write the integer fields and the float arrays into ``body`` (header + payload), append
    the CRC, COBS-encode into ``out`` with the delimiter; returns the wire length."""
    for i in range(values.shape[0]):
        value = values[i]
        for k in range(sizes[i]):
            body[offsets[i] + k] = (value >> (8 * k)) & 0xFF
    m = activations.shape[0]
    t = torques.shape[0]
    for i in range(m):
        floats[i] = activations[i]
        floats[m + i] = forces[i]
    for i in range(t):
        floats[2 * m + i] = torques[i]
    raw = floats.view(np.uint8)
    for k in range(raw.shape[0]):
        body[float_offset + k] = raw[k]
    n = body.shape[0] - 4
    crc = np.uint32(0xFFFFFFFF)
    for k in range(n):
        crc = crc_table[(crc ^ body[k]) & 0xFF] ^ (crc >> 8)
    crc = crc ^ np.uint32(0xFFFFFFFF)
    for k in range(4):
        body[n + k] = (crc >> (8 * k)) & 0xFF
    # COBS: each block of up to 254 non-zero bytes behind a code byte (its length + 1)
    code_at = 0
    pos = 1
    code = 1
    for k in range(body.shape[0]):
        byte = body[k]
        if byte == 0:
            out[code_at] = code
            code_at = pos
            pos += 1
            code = 1
        else:
            out[pos] = byte
            pos += 1
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at = pos
                pos += 1
                code = 1
    out[code_at] = code
    out[pos] = 0
    return pos + 1


class EstimatePacker:
    """Estimate frames for a fixed number of muscles and torques.

    ``pack(seq, timestamp_us, sample_seq, sample_timestamp_us, status, skipped,
    latency_us, activations, forces, torques, activation_age_us)`` takes the arrays
    as float64 numpy arrays (M,), (M,), (T,) and returns the wire frame as a view of
    the packer's buffer, valid until the next call. Integers are written modulo
    their field's width, as the protocol's counters wrap: the caller keeps
    ``skipped``, ``latency_us`` and ``activation_age_us`` within their fields.
    """

    INTEGERS = (
        "magic",
        "version_major",
        "version_minor",
        "msg_type",
        "header_flags",
        "payload_length",
        "seq",
        "timestamp_us",
        "sample_seq",
        "sample_timestamp_us",
        "status",
        "skipped",
        "latency_us",
        "n_muscles",
        "n_torques",
        "activation_age_us",
    )
    """The integer fields in the order ``pack`` fills them (the table's, arrays left out)."""

    def __init__(self, n_muscles: int, n_torques: int) -> None:
        if n_muscles > P.MAX_MUSCLES or n_torques > P.MAX_TORQUES:
            raise ProtocolError(
                f"an Estimate carries at most {P.MAX_MUSCLES} muscles and "
                f"{P.MAX_TORQUES} torques, not {n_muscles} and {n_torques}"
            )
        layout = P.ESTIMATE
        n_floats = 2 * n_muscles + n_torques
        payload = layout.fixed_size + 4 * n_floats + layout.tail_size
        where: dict[str, tuple[int, int]] = {}
        offset = 0
        for f in P.HEADER + layout.fixed_fields:
            where[f.name] = (offset, P.WIRE_TYPES[f.wire_type][1])
            offset += where[f.name][1]
        self._float_offset = offset
        offset += 4 * n_floats
        for f in layout.tail_fields:
            where[f.name] = (offset, P.WIRE_TYPES[f.wire_type][1])
            offset += where[f.name][1]
        names = tuple(
            f.name
            for f in P.HEADER + layout.fixed_fields + layout.tail_fields
            if f.name != "reserved"
        )
        if names != self.INTEGERS or any(f.wire_type != "f32" for f in layout.array_fields):
            raise ProtocolError(
                f"EstimatePacker packs {self.INTEGERS} and f32 arrays; the table now has {names}"
            )
        self._offsets = np.array([where[n][0] for n in self.INTEGERS], dtype=np.int64)
        self._sizes = np.array([where[n][1] for n in self.INTEGERS], dtype=np.int64)
        self._values = np.zeros(len(self.INTEGERS), dtype=np.int64)
        self._values[:6] = (P.MAGIC, P.VERSION_MAJOR, P.VERSION_MINOR, layout.type_id, 0, payload)
        self._values[13:15] = (n_muscles, n_torques)
        self._floats = np.zeros(n_floats, dtype=np.float32)
        self._body = np.zeros(P.HEADER_SIZE + payload + P.CRC_SIZE, dtype=np.uint8)
        self._out = np.zeros(self._body.size + self._body.size // 254 + 2, dtype=np.uint8)
        self.pack(
            0, 0, 0, 0, 0, 0, 0, np.zeros(n_muscles), np.zeros(n_muscles), np.zeros(n_torques), 0
        )  # compile (or load from Numba's cache) now

    def pack(
        self,
        seq: int,
        timestamp_us: int,
        sample_seq: int,
        sample_timestamp_us: int,
        status: int,
        skipped: int,
        latency_us: int,
        activations: np.ndarray,
        forces: np.ndarray,
        torques: np.ndarray,
        activation_age_us: int,
    ) -> np.ndarray:
        """One wire frame (COBS and delimiter included), a view of the packer's buffer."""
        v = self._values
        v[6] = seq
        v[7] = timestamp_us
        v[8] = sample_seq
        v[9] = sample_timestamp_us
        v[10] = status
        v[11] = skipped
        v[12] = latency_us
        v[15] = activation_age_us
        n = _pack(
            v,
            self._offsets,
            self._sizes,
            activations,
            forces,
            torques,
            self._floats,
            self._float_offset,
            _CRC_TABLE,
            self._body,
            self._out,
        )
        return self._out[:n]
