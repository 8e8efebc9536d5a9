"""The one table of the wire protocol: every byte layout, constant and flag.

The Python codec (`codec.py`) builds its struct formats from this table;
PROTOCOL.md's tables and the generated block of `c/mjca_bridge.h` are written
from it by `scripts/generate_protocol_artefacts.py`, and a test fails when
either file differs from what the table generates. Change a layout here, run
the script, and all three follow.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION_MAJOR = 1
VERSION_MINOR = 0

# The first two bytes of every frame, b"MJ" read as a little-endian uint16.
MAGIC = 0x4A4D
FRAME_DELIMITER = 0x00
CRC_NAME = "CRC-32/ISO-HDLC"  # zlib.crc32; poly 0x04C11DB7 reflected, init/xorout 0xFFFFFFFF
CRC_CHECK_VALUE = 0xCBF43926  # CRC of b"123456789", the catalogue's check value
CRC_SIZE = 4

MAX_CHANNELS = 16  # the validity mask is 16 bits wide
MAX_MUSCLES = 64
MAX_NAME_BYTES = 31  # UTF-8 bytes of one joint or muscle name
N_TORQUES = 3  # hip, knee, ankle

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
    """

    name: str
    wire_type: str
    unit: str
    doc: str
    role: str = "value"
    length: str | int | None = None
    counts: str | None = None


@dataclass(frozen=True)
class Flag:
    """One status bit. `unusable`: the firmware must not apply an Estimate that carries it."""

    name: str
    bit: int
    doc: str
    unusable: bool


@dataclass(frozen=True)
class MessageLayout:
    name: str
    type_id: int
    direction: str
    doc: str
    fields: tuple[Field, ...]

    @property
    def fixed_fields(self) -> tuple[Field, ...]:
        """The scalar fields that precede every array (all counts live here)."""
        return tuple(f for f in self.fields if f.length is None)

    @property
    def array_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.length is not None)

    @property
    def fixed_size(self) -> int:
        return sum(WIRE_TYPES[f.wire_type][1] for f in self.fixed_fields)


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
    Flag("MODEL_NOT_READY", 0, "no network loaded or not warmed up yet; values are zero", True),
    Flag("STALE", 1, "the answered sample is older than the host's staleness limit", True),
    Flag("INPUT_OUT_OF_RANGE", 2, "an angle lies outside the subject's joint range", False),
    Flag("INPUT_GAP", 3, "samples were missing (sequence gap) inside the input window", False),
    Flag("INPUT_INVALID", 4, "a channel was NaN, infinite or marked invalid", True),
    Flag("BACKEND_DEGRADED", 5, "the host fell back to a slower inference backend", False),
)
STATUS_UNUSABLE_MASK = sum(1 << f.bit for f in ESTIMATE_STATUS_FLAGS if f.unusable)
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
        Field("n_muscles", "u8", "", "number of muscle names", role="count",
              counts="muscle_names"),
        Field("encoding", "u8", "", "device: JointSample encoding it sends (0 rad, 1 counts)"),
        Field("sample_rate_hz", "f32", "Hz", "device: nominal sample rate; host: expected rate"),
        Field("heartbeat_period_ms", "u16", "ms", "the sender's heartbeat period"),
        Field("reply_requested", "u8", "", "1: the receiver answers with its own Hello (with 0)"),
        Field("reserved", "u8", "", "0", role="reserved"),
        Field("joint_names", "str", "", "joint (device channel) names in channel order",
              length="n_joints"),
        Field("muscle_names", "str", "", "muscle names in Estimate order (device sends none)",
              length="n_muscles"),
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
        Field("status", "u16", "", "host: Estimate status bits that hold now; device: 0"),
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
    "The host's answer to one JointSample: muscle activations and forces in the bundle's "
    "muscle order and the muscles' joint torques τ = RᵀF.",
    (
        Field("sample_seq", "u32", "", "seq of the JointSample answered"),
        Field("sample_timestamp_us", "u32", "µs", "timestamp_us of the JointSample answered"),
        Field("status", "u16", "", "status bits: the Estimate status table"),
        Field("skipped", "u16", "", "samples received but not answered since the last Estimate"),
        Field("latency_us", "u32", "µs", "host time from the sample's arrival to this send"),
        Field("n_muscles", "u8", "", "number of muscles", role="count", counts="activations"),
        Field("reserved", "u8", "", "0", role="reserved"),
        Field("activations", "f32", "", "activation per muscle, 0..1", length="n_muscles"),
        Field("forces", "f32", "N", "muscle force per muscle", length="n_muscles"),
        Field("torques", "f32", "N·m", "hip, knee, ankle muscle torque τ = RᵀF",
              length=N_TORQUES),
    ),
)

MESSAGES = (HELLO, HEARTBEAT, JOINT_SAMPLE, ESTIMATE)
MESSAGES_BY_TYPE = {m.type_id: m for m in MESSAGES}


def max_payload_size(layout: MessageLayout) -> int:
    """Largest payload of a message type at the protocol's limits."""
    limits = {"n_joints": MAX_CHANNELS, "n_muscles": MAX_MUSCLES, "n_channels": MAX_CHANNELS}
    size = layout.fixed_size
    for f in layout.array_fields:
        n = f.length if isinstance(f.length, int) else limits[f.length]
        per_item = 1 + MAX_NAME_BYTES if f.wire_type == "str" else WIRE_TYPES[f.wire_type][1]
        size += n * per_item
    return size


MAX_FRAME_SIZE = HEADER_SIZE + max(max_payload_size(m) for m in MESSAGES) + CRC_SIZE
# COBS adds one byte per started 254 bytes; the delimiter adds one.
MAX_ENCODED_FRAME_SIZE = MAX_FRAME_SIZE + (MAX_FRAME_SIZE + 253) // 254 + 1
