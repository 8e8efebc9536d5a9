"""The one table of the wire protocol: every byte layout, constant and flag.

The Python codec (`codec.py`) builds its struct formats from this table;
PROTOCOL.md's tables and the generated block of `c/mjca_bridge.h` are written
from it by `scripts/generate_protocol_artefacts.py`, and a test fails when
either file differs from what the table generates. Change a layout here, run
the script, and all three follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION_MAJOR = 1
VERSION_MINOR = 1

# The first two bytes of every frame, b"MJ" read as a little-endian uint16.
MAGIC = 0x4A4D
FRAME_DELIMITER = 0x00
CRC_NAME = "CRC-32/ISO-HDLC"  # zlib.crc32; poly 0x04C11DB7 reflected, init/xorout 0xFFFFFFFF
CRC_CHECK_VALUE = 0xCBF43926  # CRC of b"123456789", the catalogue's check value
CRC_SIZE = 4

MAX_CHANNELS = 16  # the validity mask is 16 bits wide
MAX_MUSCLES = 64
MAX_NAME_BYTES = 31  # UTF-8 bytes of one joint or muscle name
MAX_TORQUES = 16  # one per coordinate the host balances (its Hello names them)

ROLE_DEVICE = 0
ROLE_HOST = 1

ENCODING_RADIANS = 0  # JointSample values are float32 radians, OpenSim conventions
ENCODING_COUNTS = 1  # JointSample values are int32 raw counts; sensors.json maps them

DEFAULT_HEARTBEAT_PERIOD_MS = 100
# Fail-safe defaults the firmware applies (PROTOCOL.md, "Fail-safe rules").
DEFAULT_HOST_TIMEOUT_MS = 300  # three heartbeat periods without any valid host frame
DEFAULT_MAX_ESTIMATE_AGE_MS = 50  # device clock now minus the answered sample's timestamp

# Struct characters of the wire types (all little-endian).
WIRE_TYPES = {
    "u8": ("B", 1, "uint8_t"),
    "u16": ("H", 2, "uint16_t"),
    "u32": ("I", 4, "uint32_t"),
    "i32": ("i", 4, "int32_t"),
    "f32": ("f", 4, "float"),
    # A 32-bit value: float32 when the message's `encoding` is ENCODING_RADIANS, else int32.
    "v32": ("f", 4, "uint32_t"),
    # A name: uint8 byte length, then that many UTF-8 bytes (no terminator).
    "str": ("", 0, "char"),
}


@dataclass(frozen=True)
class Field:
    """One field of a header or payload, in wire order.

    `role` says how the codec fills it: "value" (an attribute of the message),
    "count" (the length of the array attribute named in `counts`), "reserved"
    (sent as 0, ignored on receipt). `length` is, for an array, the name of its
    count field or a fixed integer; None for a scalar.

    `since_minor`: the minor version that introduced the field. A field added by a
    minor version either takes the place of a reserved field (it precedes the
    arrays; the byte was 0 in older frames) or is appended after the last array
    (absent from older frames). Either way a receiver decoding a frame of an older
    minor version uses `default` for it (for a count field: its array's length).
    """

    name: str
    wire_type: str
    unit: str
    doc: str
    role: str = "value"
    length: str | int | None = None
    counts: str | None = None
    since_minor: int = 0
    default: int | None = None

    def __post_init__(self) -> None:
        if self.since_minor > 0 and self.default is None:
            raise ValueError(
                f"field {self.name}: a field added by a minor version needs the "
                "default that frames of older minor versions stand for"
            )
        if (self.role == "count") != (self.counts is not None):
            raise ValueError(f"field {self.name}: a count field, and only one, names its array")

    @property
    def array_length(self) -> str | int:
        """An array's length: the name of its count field, or a fixed number of items."""
        if self.length is None:
            raise ValueError(f"field {self.name} is a scalar, not an array")
        return self.length


@dataclass(frozen=True)
class Flag:
    """One status bit. `unusable`: the firmware must not apply an Estimate that carries it."""

    name: str
    bit: int
    doc: str
    unusable: bool
    since_minor: int = 0


@dataclass(frozen=True)
class MessageLayout:
    name: str
    type_id: int
    direction: str
    doc: str
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        kinds = "".join("a" if f.length is not None else "s" for f in self.fields)
        if not re.fullmatch("s*a*s*", kinds):
            raise ValueError(f"{self.name}: scalars may only precede the arrays or follow them all")
        for f in self.tail_fields:
            if f.since_minor == 0:
                raise ValueError(f"{self.name}.{f.name}: only minor versions append fields")

    @property
    def fixed_fields(self) -> tuple[Field, ...]:
        """The scalar fields that precede every array (all counts live here)."""
        first_array = next(
            (i for i, f in enumerate(self.fields) if f.length is not None), len(self.fields)
        )
        return self.fields[:first_array]

    @property
    def array_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.length is not None)

    @property
    def tail_fields(self) -> tuple[Field, ...]:
        """Scalar fields appended after the arrays by a minor version."""
        if not self.array_fields:
            return ()
        last_array = max(i for i, f in enumerate(self.fields) if f.length is not None)
        return self.fields[last_array + 1 :]

    @property
    def fixed_size(self) -> int:
        return sum(WIRE_TYPES[f.wire_type][1] for f in self.fixed_fields)

    @property
    def tail_size(self) -> int:
        return sum(WIRE_TYPES[f.wire_type][1] for f in self.tail_fields)


HEADER = (
    Field("magic", "u16", "", f"0x{MAGIC:04X} (bytes 'M' 'J')"),
    Field("version_major", "u8", "", "protocol major version; a receiver drops other majors"),
    Field("version_minor", "u8", "", "protocol minor version of the sender"),
    Field("msg_type", "u8", "", "message type id"),
    Field("header_flags", "u8", "", "reserved, 0", role="reserved"),
    Field("payload_length", "u16", "bytes", "payload bytes that follow the header"),
    Field("seq", "u32", "", "sender's frame counter, +1 per frame of this type, wraps"),
    Field("timestamp_us", "u32", "µs", "sender's clock (device: micros()), wraps after 2^32 µs"),
)
HEADER_SIZE = sum(WIRE_TYPES[f.wire_type][1] for f in HEADER)

ESTIMATE_STATUS_FLAGS = (
    Flag(
        "MODEL_NOT_READY",
        0,
        "no estimate yet: the network is loading, or the input history "
        "restarted (link reopened, a silence longer than a window, a device clock reset) and "
        "holds less than one window; values are zero",
        True,
    ),
    Flag(
        "STALE",
        1,
        "the Estimate left the host later than its staleness limit after the sample arrived",
        True,
    ),
    Flag(
        "INPUT_OUT_OF_RANGE",
        2,
        "an angle lies beyond the subject's joint range by more than "
        "the host's margin: values are computed, with muscle paths extrapolated beyond the "
        "range they were fitted on",
        False,
    ),
    Flag(
        "INPUT_GAP",
        3,
        "the input window holds missing samples (a sequence gap) or held ones "
        "(an invalid sample replaced by the last valid angles)",
        False,
    ),
    Flag(
        "INPUT_INVALID",
        4,
        "a channel was NaN, infinite or marked invalid, or the sample's "
        "timestamp did not advance; values are zero",
        True,
    ),
    Flag("BACKEND_DEGRADED", 5, "the host fell back to a slower inference backend", False),
    Flag(
        "ACTIVATION_STALE",
        6,
        "the activations are older than the host's activation-age "
        "limit (see activation_age_us; the network has fallen behind): values are the last "
        "network output carried forward",
        True,
        since_minor=1,
    ),
)
STATUS_UNUSABLE_MASK = sum(1 << f.bit for f in ESTIMATE_STATUS_FLAGS if f.unusable)
STATUS_KNOWN_MASK = sum(1 << f.bit for f in ESTIMATE_STATUS_FLAGS)
"""Bits this version defines; a receiver treats any other bit as must-not-apply."""
STATUS = {f.name: 1 << f.bit for f in ESTIMATE_STATUS_FLAGS}

# Why a stream decoder dropped a candidate frame, in the order checks run.
ERROR_KINDS = (
    ("cobs", "not a valid COBS encoding"),
    ("short", "shorter than a header and a CRC"),
    ("crc", "CRC-32 mismatch"),
    ("magic", "CRC good but the first two bytes are not 'MJ'"),
    ("version", "another protocol major version"),
    ("length", "payload_length disagrees with the frame's size"),
    ("unknown_type", "a message type this receiver does not know (skipped)"),
    ("payload", "payload malformed: counts beyond limits, bad UTF-8, wrong size"),
    ("oversize", "more than the largest frame's bytes without a delimiter"),
)

HELLO = MessageLayout(
    "Hello",
    0x01,
    "both",
    "Sent by each side when it starts (reply_requested = 1) and in answer to every Hello "
    "that requests one: who it is, what it sends, in which order.",
    (
        Field("role", "u8", "", "0 device, 1 host"),
        Field("n_joints", "u8", "", "number of joint names", role="count", counts="joint_names"),
        Field("n_muscles", "u8", "", "number of muscle names", role="count", counts="muscle_names"),
        Field(
            "encoding", "u8", "", "device: JointSample encoding it sends (0 rad, 1 counts); host: 0"
        ),
        Field(
            "sample_rate_hz",
            "f32",
            "Hz",
            "device: nominal sample rate; host: the model's "
            "rate (any device rate is resampled to it)",
        ),
        Field("heartbeat_period_ms", "u16", "ms", "the sender's heartbeat period"),
        Field("reply_requested", "u8", "", "1: the receiver answers with its own Hello (with 0)"),
        Field("reserved", "u8", "", "0", role="reserved"),
        Field(
            "joint_names",
            "str",
            "",
            "device: its channel names in channel order; host: the "
            "coordinates of the Estimate's torques, in torque order",
            length="n_joints",
        ),
        Field(
            "muscle_names",
            "str",
            "",
            "muscle names in Estimate order (device sends none)",
            length="n_muscles",
        ),
    ),
)

HEARTBEAT = MessageLayout(
    "Heartbeat",
    0x02,
    "both",
    "Sent every heartbeat_period_ms by each side, whether or not other frames flow.",
    (
        Field("role", "u8", "", "0 device, 1 host"),
        Field("reserved", "u8", "", "0", role="reserved"),
        Field("heartbeat_period_ms", "u16", "ms", "the sender's heartbeat period"),
        Field(
            "status",
            "u16",
            "",
            "host: Estimate status bits that hold now (MODEL_NOT_READY "
            "while it is not estimating: no samples yet, or the device is silent); device: 0",
        ),
    ),
)

JOINT_SAMPLE = MessageLayout(
    "JointSample",
    0x10,
    "device→host",
    "One sample of every channel, sent at the sample rate. The header's timestamp_us is the "
    "instant the channels were read.",
    (
        Field("encoding", "u8", "", "0: values are float32 rad (OpenSim); 1: int32 counts"),
        Field("n_channels", "u8", "", "number of channels", role="count", counts="values"),
        Field("valid_mask", "u16", "", "bit i set: channel i is valid"),
        Field("values", "v32", "rad or counts", "one value per channel", length="n_channels"),
    ),
)

ESTIMATE = MessageLayout(
    "Estimate",
    0x20,
    "host→device",
    "The host's answer to one JointSample: muscle activations and forces in the muscle order "
    "of the host's Hello and the muscles' joint torques τ = RᵀF about the coordinates the "
    "host's Hello names (its joint_names), in that order.",
    (
        Field("sample_seq", "u32", "", "seq of the JointSample answered"),
        Field("sample_timestamp_us", "u32", "µs", "timestamp_us of the JointSample answered"),
        Field("status", "u16", "", "status bits: the Estimate status table"),
        Field("skipped", "u16", "", "samples received but not answered since the last Estimate"),
        Field("latency_us", "u32", "µs", "host time from the sample's arrival to this send"),
        Field("n_muscles", "u8", "", "number of muscles", role="count", counts="activations"),
        Field(
            "n_torques",
            "u8",
            "",
            "number of torques (in a 1.0 frame this byte is reserved "
            "and there are 3 torques: hip, knee, ankle)",
            role="count",
            counts="torques",
            since_minor=1,
            default=3,
        ),
        Field("activations", "f32", "", "activation per muscle, 0..1", length="n_muscles"),
        Field("forces", "f32", "N", "muscle force per muscle", length="n_muscles"),
        Field(
            "torques",
            "f32",
            "N·m",
            "muscle torque τ = RᵀF per coordinate of the host's Hello joint_names, in that order",
            length="n_torques",
        ),
        Field(
            "activation_age_us",
            "u32",
            "µs",
            "device time from the end of the input window "
            "whose network output gave the activations to the instant estimated (0: the "
            "network ran on this sample's own window)",
            since_minor=1,
            default=0,
        ),
    ),
)

MESSAGES = (HELLO, HEARTBEAT, JOINT_SAMPLE, ESTIMATE)
ARRAY_LIMITS = {
    "n_joints": MAX_CHANNELS,
    "n_muscles": MAX_MUSCLES,
    "n_channels": MAX_CHANNELS,
    "n_torques": MAX_TORQUES,
}
"""The largest value each count field may take."""
MESSAGES_BY_TYPE = {m.type_id: m for m in MESSAGES}


def max_payload_size(layout: MessageLayout) -> int:
    """Largest payload of a message type at the protocol's limits."""
    size = layout.fixed_size + layout.tail_size
    for f in layout.array_fields:
        length = f.array_length
        n = length if isinstance(length, int) else ARRAY_LIMITS[length]
        per_item = 1 + MAX_NAME_BYTES if f.wire_type == "str" else WIRE_TYPES[f.wire_type][1]
        size += n * per_item
    return size


MAX_FRAME_SIZE = HEADER_SIZE + max(max_payload_size(m) for m in MESSAGES) + CRC_SIZE
# COBS adds one byte per started 254 bytes; the delimiter adds one.
MAX_ENCODED_FRAME_SIZE = MAX_FRAME_SIZE + (MAX_FRAME_SIZE + 253) // 254 + 1
