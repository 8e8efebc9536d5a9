"""Encode and decode protocol frames (PROTOCOL.md), built from the table in `protocol.py`.

A frame on the wire is COBS(header + payload + CRC-32) followed by one 0x00.
`encode(message)` returns exactly that; `StreamDecoder.feed(chunk)` takes bytes
in any chunking and returns the messages completed so far, resynchronising after
garbage and counting what it dropped in `StreamDecoder.errors`.

Struct objects are compiled once per (message type, array lengths) and cached,
so a frame costs a few microseconds each way.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from firmware_bridge import protocol as P

Names = tuple[str, ...]


class ProtocolError(ValueError):
    """A message that cannot be put on the wire (a count or name beyond the protocol's limits)."""


@dataclass(frozen=True, slots=True)
class Hello:
    seq: int
    timestamp_us: int
    role: int
    sample_rate_hz: float
    joint_names: Names = ()
    muscle_names: Names = ()
    encoding: int = P.ENCODING_RADIANS
    heartbeat_period_ms: int = P.DEFAULT_HEARTBEAT_PERIOD_MS
    reply_requested: int = 0


@dataclass(frozen=True, slots=True)
class Heartbeat:
    seq: int
    timestamp_us: int
    role: int
    heartbeat_period_ms: int = P.DEFAULT_HEARTBEAT_PERIOD_MS
    status: int = 0


@dataclass(frozen=True, slots=True)
class JointSample:
    """Angles (float32 rad, OpenSim conventions) or raw counts, one per channel."""

    seq: int
    timestamp_us: int
    values: tuple[float, ...] | tuple[int, ...]
    valid_mask: int
    encoding: int = P.ENCODING_RADIANS


@dataclass(frozen=True, slots=True)
class Estimate:
    """Activations (0..1) and forces (N) in the host Hello's muscle order, torques (N·m) about
    the coordinates its Hello names, and the age (µs, device time) of the activations."""

    seq: int
    timestamp_us: int
    sample_seq: int
    sample_timestamp_us: int
    activations: tuple[float, ...]
    forces: tuple[float, ...]
    torques: tuple[float, ...]
    status: int = 0
    skipped: int = 0
    latency_us: int = 0
    activation_age_us: int = 0


Message = Hello | Heartbeat | JointSample | Estimate
MESSAGE_CLASSES = {
    "Hello": Hello,
    "Heartbeat": Heartbeat,
    "JointSample": JointSample,
    "Estimate": Estimate,
}

ERROR_KINDS = tuple(kind for kind, _ in P.ERROR_KINDS)

_HEADER_FORMAT = "<" + "".join(P.WIRE_TYPES[f.wire_type][0] for f in P.HEADER)
_HEADER = struct.Struct(_HEADER_FORMAT)
_CRC = struct.Struct("<I")
_ENCODINGS = (P.ENCODING_RADIANS, P.ENCODING_COUNTS)


def _char(f: P.Field, encoding: int) -> str:
    if f.wire_type == "v32":
        return "f" if encoding == P.ENCODING_RADIANS else "i"
    return P.WIRE_TYPES[f.wire_type][0]


class _MessageCodec:
    """Encoder and decoder of one message type, its structs compiled from the table.

    Encoding writes this version's layout. Decoding follows the sender's minor
    version (the header's): fields a newer minor introduced take their table
    default in an older sender's frame (a count field's default is its array's
    length), and bytes a newer sender appended beyond what this version knows are
    ignored.
    """

    def __init__(self, layout: P.MessageLayout) -> None:
        self.layout = layout
        self.cls = MESSAGE_CLASSES[layout.name]
        # The class is the typed face of the table's layout: the same fields, by name.
        table = {"seq", "timestamp_us"} | {f.name for f in layout.fields if f.role == "value"}
        declared = {f.name for f in fields(self.cls)}
        if declared != table:
            raise TypeError(
                f"{self.cls.__name__} declares {sorted(declared - table)} beyond the protocol "
                f"table and lacks {sorted(table - declared)}"
            )
        self.fixed = layout.fixed_fields
        self.arrays = layout.array_fields
        self.tail = layout.tail_fields
        self.has_strings = any(f.wire_type == "str" for f in self.arrays)
        self.fixed_struct = struct.Struct(
            "<" + "".join(P.WIRE_TYPES[f.wire_type][0] for f in self.fixed)
        )
        # Arrays whose length is another array's count field share that array's length.
        self.length_source = {}
        for a in self.arrays:
            if isinstance(a.length, str):
                counted = next(f.counts for f in self.fixed if f.name == a.length)
                self.length_source[a.name] = counted
        self.fixed_index = {f.name: i for i, f in enumerate(self.fixed)}
        self._frame_structs: dict[tuple, struct.Struct] = {}
        self._array_structs: dict[tuple, struct.Struct] = {}
        # Decode plans, one per (frame end, encoding byte, sender minor) seen in a valid frame.
        self._plans: dict[tuple[int, int, int], _DecodePlan] = {}
        offsets = dict(zip(self.fixed_index, _field_offsets(self.fixed)))
        self._encoding_at = P.HEADER_SIZE + offsets["encoding"] if "encoding" in offsets else None

    def _lengths(self, fixed_values: Sequence) -> tuple[int, ...]:
        return tuple(
            length if isinstance(length, int) else fixed_values[self.fixed_index[length]]
            for length in (a.array_length for a in self.arrays)
        )

    def _encoding(self, fixed_values: Sequence) -> int:
        index = self.fixed_index.get("encoding")
        return P.ENCODING_RADIANS if index is None else fixed_values[index]

    def _encoding_valid(self, fixed_values: Sequence) -> bool:
        return self._encoding(fixed_values) in _ENCODINGS

    def _as_of(self, fixed_values: Sequence, minor: int) -> list:
        """The fixed values as a sender of ``minor`` meant them: defaults for later fields."""
        return [f.default if f.since_minor > minor else v for f, v in zip(self.fixed, fixed_values)]

    def _tail_of(self, minor: int) -> tuple[P.Field, ...]:
        return tuple(f for f in self.tail if f.since_minor <= minor)

    # -- encode ---------------------------------------------------------------------------
    def _fixed_values(self, msg: Message) -> list:
        out = []
        for f in self.fixed:
            if f.counts is not None:  # a count field: its array's length
                out.append(len(getattr(msg, f.counts)))
            elif f.role == "reserved":
                out.append(0)
            else:
                out.append(getattr(msg, f.name))
        return out

    def _check_lengths(self, msg: Message, fixed_values: list) -> tuple[int, ...]:
        lengths = self._lengths(fixed_values)
        for a, n in zip(self.arrays, lengths):
            actual = len(getattr(msg, a.name))
            if actual != n:
                raise ProtocolError(
                    f"{self.layout.name}.{a.name} has {actual} items, expected {n} "
                    f"(same as {self.length_source.get(a.name, 'the protocol')})"
                )
            if isinstance(a.length, str) and n > P.ARRAY_LIMITS[a.length]:
                raise ProtocolError(
                    f"{self.layout.name}.{a.name} has {n} items; the protocol allows at most "
                    f"{P.ARRAY_LIMITS[a.length]}"
                )
        return lengths

    def encode_body(self, msg: Message) -> bytes:
        """Header + payload + CRC, before COBS."""
        fixed_values = self._fixed_values(msg)
        lengths = self._check_lengths(msg, fixed_values)
        if not self._encoding_valid(fixed_values):
            raise ProtocolError(
                f"{self.layout.name}.encoding must be {P.ENCODING_RADIANS} "
                f"(radians) or {P.ENCODING_COUNTS} (counts)"
            )
        try:
            body = (
                self._pack_with_names(msg, fixed_values)
                if self.has_strings
                else self._pack(msg, fixed_values, lengths)
            )
        except struct.error as exc:
            raise ProtocolError(
                f"{self.layout.name}: a value does not fit its wire type ({exc})"
            ) from None
        return body + _CRC.pack(zlib.crc32(body))

    def _pack(self, msg: Message, fixed_values: list, lengths: tuple[int, ...]) -> bytes:
        """Header and payload in one struct call, compiled once per array lengths."""
        encoding = self._encoding(fixed_values)
        frame_struct = self._frame_structs.get((lengths, encoding))
        if frame_struct is None:
            frame_struct = self._compile_frame(lengths, encoding)
        args = [
            P.MAGIC,
            P.VERSION_MAJOR,
            P.VERSION_MINOR,
            self.layout.type_id,
            0,
            frame_struct.size - P.HEADER_SIZE,
            msg.seq,
            msg.timestamp_us,
        ]
        args += fixed_values
        for a in self.arrays:
            args += getattr(msg, a.name)
        for f in self.tail:
            args.append(getattr(msg, f.name))
        return frame_struct.pack(*args)

    def _pack_with_names(self, msg: Message, fixed_values: list) -> bytes:
        payload = self.fixed_struct.pack(*fixed_values) + b"".join(
            _encode_names(getattr(msg, a.name), self.layout.name, a.name) for a in self.arrays
        )
        payload += struct.pack(
            "<" + _tail_format(self.tail), *(getattr(msg, f.name) for f in self.tail)
        )
        return (
            _HEADER.pack(
                P.MAGIC,
                P.VERSION_MAJOR,
                P.VERSION_MINOR,
                self.layout.type_id,
                0,
                len(payload),
                msg.seq,
                msg.timestamp_us,
            )
            + payload
        )

    def _compile_frame(self, lengths: tuple[int, ...], encoding: int) -> struct.Struct:
        fmt = (
            _HEADER_FORMAT
            + self.fixed_struct.format[1:]
            + self._arrays_format(lengths, encoding)
            + _tail_format(self.tail)
        )
        compiled = struct.Struct(fmt)
        self._frame_structs[(lengths, encoding)] = compiled
        return compiled

    def _arrays_format(self, lengths: tuple[int, ...], encoding: int) -> str:
        return "".join(f"{n}{_char(a, encoding)}" for a, n in zip(self.arrays, lengths))

    # -- decode ---------------------------------------------------------------------------
    def decode_payload(
        self, frame: bytes, end: int, seq: int, timestamp_us: int, minor: int
    ) -> Message | None:
        """Build the message from frame[HEADER_SIZE:end] as a sender of version 1.``minor``
        wrote it; None when the payload is malformed."""
        known = min(minor, P.VERSION_MINOR)
        at = self._encoding_at
        key = (end, frame[at] if at is not None and at < end else 0, known)
        plan = self._plans.get(key)
        if plan is not None:
            values = plan.struct.unpack_from(frame, P.HEADER_SIZE)
            if all(values[i] == n for i, n in plan.counts):
                kwargs: dict[str, Any] = {"seq": seq, "timestamp_us": timestamp_us}
                kwargs.update(plan.defaults)
                for name, i in plan.scalars:
                    kwargs[name] = values[i]
                for name, a, b in plan.arrays:
                    kwargs[name] = values[a:b]
                return self.cls(**kwargs)
        message = self._decode_generic(frame, end, seq, timestamp_us, minor)
        if message is not None and not self.has_strings:
            self._add_plan(key, frame, end)
        return message

    def _add_plan(self, key: tuple[int, int, int], frame: bytes, end: int) -> None:
        known = key[2]
        raw = self.fixed_struct.unpack_from(frame, P.HEADER_SIZE)
        fixed_values = self._as_of(raw, known)
        lengths = self._lengths(fixed_values)
        encoding = self._encoding(fixed_values)
        tail = self._tail_of(known)
        full = struct.Struct(
            self.fixed_struct.format + self._arrays_format(lengths, encoding) + _tail_format(tail)
        )
        if P.HEADER_SIZE + full.size != end:
            return  # trailing bytes of a newer minor version: no plan, the general path
        arrays, start = [], len(self.fixed)
        for a, n in zip(self.arrays, lengths):
            arrays.append((a.name, start, start + n))
            start += n
        current = [f for f in self.fixed if f.since_minor <= known]
        self._plans[key] = _DecodePlan(
            struct=full,
            scalars=tuple(
                (f.name, i) for i, f in enumerate(self.fixed) if f.role == "value" and f in current
            )
            + tuple((f.name, start + i) for i, f in enumerate(tail)),
            arrays=tuple(arrays),
            counts=tuple(
                (i, raw[i]) for i, f in enumerate(self.fixed) if f.role == "count" and f in current
            ),
            defaults={
                f.name: f.default
                for f in self.fixed + self.tail
                if f.since_minor > known and f.role == "value"
            },
        )

    def _decode_generic(
        self, frame: bytes, end: int, seq: int, timestamp_us: int, minor: int
    ) -> Message | None:
        known = min(minor, P.VERSION_MINOR)
        start = P.HEADER_SIZE
        if end - start < self.fixed_struct.size:
            return None
        fixed_values = self._as_of(self.fixed_struct.unpack_from(frame, start), known)
        offset = start + self.fixed_struct.size
        lengths = self._lengths(fixed_values)
        for a, n in zip(self.arrays, lengths):
            if isinstance(a.length, str) and n > P.ARRAY_LIMITS[a.length]:
                return None
        if not self._encoding_valid(fixed_values):
            return None
        kwargs: dict[str, Any] = {"seq": seq, "timestamp_us": timestamp_us}
        for f, v in zip(self.fixed, fixed_values):
            if f.role == "value":
                kwargs[f.name] = v
        if self.has_strings:
            for a, n in zip(self.arrays, lengths):
                names, offset = _decode_names(frame, offset, end, n)
                if names is None:
                    return None
                kwargs[a.name] = names
        else:
            encoding = self._encoding(fixed_values)
            key = (lengths, encoding)
            array_struct = self._array_structs.get(key)
            if array_struct is None:
                array_struct = struct.Struct("<" + self._arrays_format(lengths, encoding))
                self._array_structs[key] = array_struct
            if offset + array_struct.size > end:
                return None
            flat = array_struct.unpack_from(frame, offset)
            offset += array_struct.size
            i = 0
            for a, n in zip(self.arrays, lengths):
                kwargs[a.name] = flat[i : i + n]
                i += n
        for f in self.tail:
            if f.since_minor > known:
                kwargs[f.name] = f.default
                continue
            size = P.WIRE_TYPES[f.wire_type][1]
            if offset + size > end:
                return None
            kwargs[f.name] = struct.unpack_from("<" + _tail_format((f,)), frame, offset)[0]
            offset += size
        # A newer minor version may append fields, which this receiver ignores.
        if offset != end and minor <= P.VERSION_MINOR:
            return None
        return self.cls(**kwargs)


def _tail_format(fields: Sequence[P.Field]) -> str:
    return "".join(P.WIRE_TYPES[f.wire_type][0] for f in fields)


@dataclass(frozen=True)
class _DecodePlan:
    """One compiled struct for a whole payload of known counts, and where each field lands."""

    struct: struct.Struct
    scalars: tuple[tuple[str, int], ...]
    arrays: tuple[tuple[str, int, int], ...]
    counts: tuple[tuple[int, int], ...]
    defaults: dict[str, int | None]


def _field_offsets(fields: Sequence[P.Field]) -> list[int]:
    offsets, offset = [], 0
    for f in fields:
        offsets.append(offset)
        offset += P.WIRE_TYPES[f.wire_type][1]
    return offsets


def _encode_names(names: Sequence[str], message: str, field_name: str) -> bytes:
    out = bytearray()
    for name in names:
        try:
            raw = name.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError(
                f"{message}.{field_name}: name {name!r} is not valid Unicode text"
            ) from None
        if b"\x00" in raw:
            raise ProtocolError(f"{message}.{field_name}: name {name!r} contains a NUL character")
        if len(raw) > P.MAX_NAME_BYTES:
            raise ProtocolError(
                f"{message}.{field_name}: name {name!r} is {len(raw)} UTF-8 "
                f"bytes; the protocol allows at most {P.MAX_NAME_BYTES}"
            )
        out.append(len(raw))
        out += raw
    return bytes(out)


def _decode_names(frame: bytes, offset: int, end: int, n: int) -> tuple[Names | None, int]:
    names = []
    for _ in range(n):
        if offset >= end:
            return None, offset
        size = frame[offset]
        if size > P.MAX_NAME_BYTES or offset + 1 + size > end:
            return None, offset
        raw = frame[offset + 1 : offset + 1 + size]
        if b"\x00" in raw:
            return None, offset
        try:
            names.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return None, offset
        offset += 1 + size
    return tuple(names), offset


_CODECS_BY_CLASS = {MESSAGE_CLASSES[m.name]: _MessageCodec(m) for m in P.MESSAGES}
_CODECS_BY_TYPE = {c.layout.type_id: c for c in _CODECS_BY_CLASS.values()}


_CODE_BYTE = [bytes((k,)) for k in range(256)]


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result holds no 0x00 byte."""
    blocks = data.split(b"\x00")
    if len(data) < 254:
        return b"".join([_CODE_BYTE[len(b) + 1] + b for b in blocks])
    out = []
    for block in blocks:
        while len(block) >= 254:
            out.append(_CODE_BYTE[255] + block[:254])
            block = block[254:]
        out.append(_CODE_BYTE[len(block) + 1] + block)
    return b"".join(out)


def cobs_decode(data: bytes) -> bytes | None:
    """Inverse of `cobs_encode`; None when `data` is not a valid COBS encoding."""
    if b"\x00" in data:
        return None
    # Fast path while no block is a full 254-byte one: every code byte becomes the zero
    # that precedes its block, and the first code byte is dropped.
    out = bytearray(data)
    n = len(data)
    i = 0
    while i < n:
        code = data[i]
        if code == 255:
            return _cobs_decode_long(data)
        out[i] = 0
        i += code
    if i != n:
        return None
    return bytes(out[1:])


def _cobs_decode_long(data: bytes) -> bytes | None:
    blocks = []
    carry = b""  # the content of 255-code blocks, which imply no zero after them
    i = 0
    n = len(data)
    code = 0
    while i < n:
        code = data[i]
        j = i + code
        if j > n:
            return None
        if code == 255:
            carry += data[i + 1 : j]
        elif carry:
            blocks.append(carry + data[i + 1 : j])
            carry = b""
        else:
            blocks.append(data[i + 1 : j])
        i = j
    if code == 255:
        blocks.append(carry)
    return b"\x00".join(blocks)


def encode(message: Message) -> bytes:
    """One framed frame: COBS(header + payload + CRC) and the 0x00 delimiter."""
    codec = _CODECS_BY_CLASS.get(type(message))
    if codec is None:
        raise ProtocolError(f"cannot encode {type(message).__name__}: not a protocol message")
    return cobs_encode(codec.encode_body(message)) + b"\x00"


def decode_frame(frame: bytes) -> tuple[Message, None] | tuple[None, str]:
    """Decode one un-stuffed frame (header + payload + CRC): (message, None) or (None, kind)."""
    if len(frame) < P.HEADER_SIZE + P.CRC_SIZE:
        return None, "short"
    if zlib.crc32(memoryview(frame)[: -P.CRC_SIZE]) != _CRC.unpack_from(frame, len(frame) - 4)[0]:
        return None, "crc"
    magic, major, minor, msg_type, _, payload_length, seq, timestamp_us = _HEADER.unpack_from(frame)
    if magic != P.MAGIC:
        return None, "magic"
    if major != P.VERSION_MAJOR:
        return None, "version"
    end = len(frame) - P.CRC_SIZE
    if payload_length != end - P.HEADER_SIZE:
        return None, "length"
    codec = _CODECS_BY_TYPE.get(msg_type)
    if codec is None:
        return None, "unknown_type"
    message = codec.decode_payload(frame, end, seq, timestamp_us, minor)
    if message is None:
        return None, "payload"
    return message, None


@dataclass
class StreamDecoder:
    """Incremental decoder: feed it bytes as they arrive, get whole messages back.

    Frames end at 0x00. A candidate that fails (COBS, CRC, ...) is scanned for a
    later frame start (a COBS code byte followed by the magic "MJ"), so a frame
    that follows garbage without a delimiter in between is still recovered. A run
    of more than ``max_frame_bytes`` without a delimiter counts once as
    ``oversize`` (and not again as whatever its truncated remains fail as); only its
    last frame's worth is kept and scanned. `errors` counts dropped candidates by
    kind (see ERROR_KINDS); `frames` counts the messages returned; `sender_minor` is
    the protocol minor version of the last message decoded (None before the first).
    """

    max_frame_bytes: int = P.MAX_ENCODED_FRAME_SIZE
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    frames: int = 0
    sender_minor: int | None = None
    _pending: bytes = b""
    _pending_oversize: bool = False

    def feed(self, data: bytes) -> list[Message]:
        buffer = self._pending + data if self._pending else bytes(data)
        parts = buffer.split(b"\x00")
        pending = parts.pop()
        out: list[Message] = []
        for i, part in enumerate(parts):
            oversize = self._pending_oversize if i == 0 else False
            if len(part) > self.max_frame_bytes:
                if not oversize:
                    self.errors["oversize"] += 1
                part, oversize = part[-self.max_frame_bytes :], True
            if part:
                self._decode_candidate(part, out, oversize)
        if parts:
            self._pending_oversize = False
        if len(pending) > self.max_frame_bytes:
            # No delimiter for longer than any frame: keep only what could still be one.
            if not self._pending_oversize:
                self.errors["oversize"] += 1
                self._pending_oversize = True
            pending = pending[-self.max_frame_bytes :]
        self._pending = pending
        return out

    def _decode_candidate(self, candidate: bytes, out: list[Message], oversize: bool) -> None:
        frame = cobs_decode(candidate)
        if frame is None:
            kind = "cobs"
        else:
            decoded = decode_frame(frame)
            if decoded[0] is not None:
                self._accept(decoded[0], frame, out)
                return
            kind = decoded[1]
        if not oversize:  # the remains of an oversize run are already counted
            self.errors[kind] += 1
        start = candidate.find(b"MJ", 2)
        while start != -1:
            frame = cobs_decode(candidate[start - 1 :])
            if frame is not None:
                message, _ = decode_frame(frame)
                if message is not None:
                    self._accept(message, frame, out)
                    return
            start = candidate.find(b"MJ", start + 1)

    def _accept(self, message: Message, frame: bytes, out: list[Message]) -> None:
        self.frames += 1
        self.sender_minor = frame[3]
        out.append(message)
