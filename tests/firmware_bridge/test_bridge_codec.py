"""The Python codec: round trips, limits, and a stream decoder that never raises or lies."""

import math
import struct
import timeit
import zlib

import numpy as np
import pytest
from helpers.bridge_strategies import estimates, messages
from helpers.bridge_version_1_0 import (
    as_version_1_0,
    read_as_version_1_0,
    three_torque_estimate,
)
from helpers.paths import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge import protocol as P
from firmware_bridge.codec import (
    Estimate,
    Heartbeat,
    Hello,
    JointSample,
    ProtocolError,
    StreamDecoder,
    cobs_decode,
    cobs_encode,
    decode_frame,
    encode,
)
from firmware_bridge.estimate_frames import EstimatePacker

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_crc_is_the_named_catalogue_crc():
    assert zlib.crc32(b"123456789") == P.CRC_CHECK_VALUE


def test_header_size_and_frame_layout_by_hand():
    sample = JointSample(seq=7, timestamp_us=0x01020304, values=(0.5, -1.0), valid_mask=0b10)
    frame = cobs_decode(encode(sample)[:-1])
    assert P.HEADER_SIZE == 16
    magic, major, minor, msg_type, flags, length, seq, ts = struct.unpack_from("<HBBBBHII", frame)
    assert (magic, major, minor, msg_type, flags) == (
        0x4A4D,
        P.VERSION_MAJOR,
        P.VERSION_MINOR,
        0x10,
        0,
    )
    assert frame[:2] == b"MJ"
    assert (length, seq, ts) == (4 + 8, 7, 0x01020304)
    assert struct.unpack_from("<BBH2f", frame, 16) == (0, 2, 0b10, 0.5, -1.0)
    assert struct.unpack_from("<I", frame, len(frame) - 4)[0] == zlib.crc32(frame[:-4])


@FAST
@given(messages)
def test_every_message_round_trips(message):
    wire = encode(message)
    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    decoded = StreamDecoder().feed(wire)
    assert len(decoded) == 1
    assert type(decoded[0]) is type(message)
    # Bytes compare NaN payloads exactly and float32 rounding is already in the strategy.
    assert encode(decoded[0]) == wire
    assert decoded[0] == message or _has_nan(message)


def _has_nan(message):
    values = [v for v in vars_of(message) if isinstance(v, float)]
    return any(math.isnan(v) for v in values)


def vars_of(message):
    for name in message.__slots__:
        value = getattr(message, name)
        if isinstance(value, tuple):
            yield from value
        else:
            yield value


@pytest.mark.slow
@FAST
@given(st.lists(messages, min_size=1, max_size=6), st.data())
def test_stream_in_arbitrary_chunks_yields_every_message_in_order(batch, data):
    wire = b"".join(encode(m) for m in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    decoder = StreamDecoder()
    out = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)]):
        out += decoder.feed(wire[start:end])
    assert [encode(m) for m in out] == [encode(m) for m in batch]
    assert sum(decoder.errors.values()) == 0


@FAST
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise_and_never_yield_a_message(garbage):
    decoder = StreamDecoder()
    assert decoder.feed(garbage) == []
    assert decoder.feed(b"\x00") == []


@FAST
@given(messages, st.data())
def test_mutated_frames_never_raise_and_yield_only_the_original(message, data):
    wire = bytearray(encode(message))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        position = data.draw(st.integers(0, len(wire) - 1))
        if action == "flip":
            wire[position] ^= data.draw(st.integers(1, 255))
        elif action == "insert":
            wire.insert(position, data.draw(st.integers(0, 255)))
        elif len(wire) > 1:
            del wire[position]
    decoder = StreamDecoder()
    out = decoder.feed(bytes(wire)) + decoder.feed(b"\x00")
    original = encode(message)
    assert all(encode(m) == original for m in out)


@FAST
@given(st.binary(max_size=600), messages, messages)
def test_a_valid_frame_after_garbage_is_always_recovered(garbage, first, second):
    decoder = StreamDecoder()
    out = decoder.feed(garbage + encode(first)) + decoder.feed(encode(second))
    encoded = [encode(m) for m in out]
    assert encoded[-2:] == [encode(first), encode(second)]


def test_errors_are_counted_by_kind():
    good = Heartbeat(seq=1, timestamp_us=2, role=P.ROLE_HOST)
    frame = bytearray(cobs_decode(encode(good)[:-1]))

    def framed(body: bytes, fix_crc: bool = True) -> bytes:
        if fix_crc:
            body = body[:-4] + struct.pack("<I", zlib.crc32(body[:-4]))
        return cobs_encode(body) + b"\x00"

    bad_crc = bytearray(frame)
    bad_crc[-1] ^= 1
    newer_major = bytearray(frame)
    newer_major[2] += 1
    unknown = bytearray(frame)
    unknown[4] = 0x7F
    wrong_length = bytearray(frame)
    wrong_length[6] += 1
    decoder = StreamDecoder()
    out = decoder.feed(
        framed(bytes(bad_crc), fix_crc=False)
        + framed(bytes(newer_major))
        + framed(bytes(unknown))
        + framed(bytes(wrong_length))
        + b"\x05\x00"
        + b"\x01\x01\x00"
        + encode(good)
    )
    assert out == [good]
    assert decoder.errors["crc"] == 1
    assert decoder.errors["version"] == 1
    assert decoder.errors["unknown_type"] == 1
    assert decoder.errors["length"] == 1
    assert decoder.errors["cobs"] == 1
    assert decoder.errors["short"] == 1
    assert decoder.frames == 1


@pytest.mark.parametrize(
    "message",
    [
        JointSample(seq=1, timestamp_us=2, values=(0.25,), valid_mask=1),
        Estimate(
            seq=1,
            timestamp_us=2,
            sample_seq=3,
            sample_timestamp_us=4,
            activations=(0.5,),
            forces=(9.0,),
            torques=(1.0, 2.0, 3.0, 4.0, 5.0),
            activation_age_us=77,
        ),
    ],
)
def test_newer_minor_version_may_append_payload_fields(message):
    body = bytearray(cobs_decode(encode(message)[:-1])[:-4])
    body[3] = P.VERSION_MINOR + 1
    body += b"\xaa\xbb"
    struct.pack_into("<H", body, 6, len(body) - P.HEADER_SIZE)
    body += struct.pack("<I", zlib.crc32(body))
    for _ in range(2):  # the second decode takes the cached plan's path
        message_read, kind = decode_frame(bytes(body))
        assert kind is None and message_read == message
    body[3] = P.VERSION_MINOR  # the same bytes from a sender of our minor: malformed
    struct.pack_into("<I", body, len(body) - 4, zlib.crc32(body[:-4]))
    assert decode_frame(bytes(body)) == (None, "payload")


def test_overlong_garbage_is_bounded_and_the_next_frame_still_decodes():
    decoder = StreamDecoder()
    good = Heartbeat(seq=3, timestamp_us=4, role=P.ROLE_DEVICE)
    assert decoder.feed(b"\x07" * (P.MAX_ENCODED_FRAME_SIZE * 3)) == []
    assert decoder.errors["oversize"] == 1
    assert decoder.feed(encode(good)) == [good]
    assert len(decoder._pending) == 0
    assert {k: v for k, v in decoder.errors.items() if v} == {"oversize": 1}


@pytest.mark.parametrize("chunk", [1, 97, 1000, 4000])
def test_a_run_without_a_delimiter_counts_once_as_oversize_however_it_arrives(chunk):
    """3000 bytes with no 0x00, then a delimiter and a good frame: one `oversize`, nothing
    else, whether the run arrives in one read with its delimiter or in small pieces."""
    good = Heartbeat(seq=3, timestamp_us=4, role=P.ROLE_DEVICE)
    wire = bytes(range(1, 256)) * 12 + b"\x00" + encode(good)
    assert len(wire) > 3000
    decoder = StreamDecoder()
    out = []
    for i in range(0, len(wire), chunk):
        out += decoder.feed(wire[i : i + chunk])
    assert out == [good]
    assert {k: v for k, v in decoder.errors.items() if v} == {"oversize": 1}


def test_a_version_1_1_receiver_reads_version_1_0_estimates():
    old = three_torque_estimate(status=P.STATUS["INPUT_GAP"], skipped=1, latency_us=300)
    decoder = StreamDecoder()
    assert decoder.feed(as_version_1_0(old) * 2) == [old, old]  # 3 torques, age 0
    assert decoder.sender_minor == 0
    assert decoder.feed(encode(old)) == [old]
    assert decoder.sender_minor == P.VERSION_MINOR


def test_a_version_1_0_receiver_reads_a_three_torque_version_1_1_estimate_correctly():
    new = three_torque_estimate(activation_age_us=4321)
    assert read_as_version_1_0(encode(new)) == (
        7,
        0,
        (0.25, 0.5),
        (100.0, 200.0),
        (1.5, -2.0, 0.25),
    )


def _zero_estimate(activations=(), forces=(), torques=(), **fields) -> Estimate:
    """An Estimate of zero counters and times, no muscles or torques unless given."""
    return Estimate(
        seq=0,
        timestamp_us=0,
        sample_seq=0,
        sample_timestamp_us=0,
        activations=activations,
        forces=forces,
        torques=torques,
        **fields,
    )


@pytest.mark.parametrize(
    "bad, match",
    [
        (JointSample(seq=0, timestamp_us=0, values=(0.0,) * 17, valid_mask=0), "at most 16"),
        (
            JointSample(
                seq=0, timestamp_us=0, values=(0.5,), valid_mask=1, encoding=P.ENCODING_COUNTS
            ),
            "does not fit",
        ),
        (
            _zero_estimate(activations=(0.1, 0.2), forces=(1.0,), torques=(0.0, 0.0, 0.0)),
            "forces has 1",
        ),
        (_zero_estimate(torques=(0.0,) * 17), "at most 16"),
        (_zero_estimate(activation_age_us=-1), "does not fit"),
        (
            Hello(seq=0, timestamp_us=0, role=0, sample_rate_hz=100.0, joint_names=("x" * 32,)),
            "at most 31",
        ),
        (Heartbeat(seq=2**32, timestamp_us=0, role=0), "does not fit"),
        (Hello(seq=0, timestamp_us=0, role=256, sample_rate_hz=1.0), "does not fit"),
        (Hello(seq=0, timestamp_us=0, role=0, sample_rate_hz=1.0, joint_names=("a\x00b",)), "NUL"),
    ],
)
def test_messages_beyond_the_protocol_are_refused_with_a_reason(bad, match):
    with pytest.raises(ProtocolError, match=match):
        encode(bad)


@pytest.mark.slow
@FAST
@given(estimates())
def test_the_estimate_packer_writes_what_the_encoder_writes(message):
    packer = _packer(len(message.activations), len(message.torques))
    frame = packer.pack(
        message.seq,
        message.timestamp_us,
        message.sample_seq,
        message.sample_timestamp_us,
        message.status,
        message.skipped,
        message.latency_us,
        np.array(message.activations, dtype=np.float64),
        np.array(message.forces, dtype=np.float64),
        np.array(message.torques, dtype=np.float64),
        message.activation_age_us,
    )
    assert bytes(frame) == encode(message)


_PACKERS = {}


def _packer(n_muscles, n_torques):
    key = (n_muscles, n_torques)
    if key not in _PACKERS:
        _PACKERS[key] = EstimatePacker(n_muscles, n_torques)
    return _PACKERS[key]


def test_the_estimate_packer_refuses_what_the_protocol_cannot_carry():
    with pytest.raises(ProtocolError, match="at most 64 muscles and 16 torques"):
        EstimatePacker(65, 3)


@pytest.mark.slow
@FAST
@given(estimates())
def test_largest_frames_fit_the_declared_maximum(message):
    assert len(encode(message)) <= P.MAX_ENCODED_FRAME_SIZE


def test_codec_is_cheap_enough_for_the_runtime():
    """Encode + decode of a 10-muscle Estimate: measured ~15-35 µs here; 150 µs is a regression."""
    estimate = Estimate(
        seq=1,
        timestamp_us=2,
        sample_seq=3,
        sample_timestamp_us=4,
        activations=tuple(0.05 * i for i in range(10)),
        forces=tuple(37.5 * i for i in range(10)),
        torques=(1.5, -2.0, 0.25),
    )
    decoder = StreamDecoder()

    def round_trip():
        return decoder.feed(encode(estimate))

    assert [encode(m) for m in round_trip()] == [encode(estimate)]
    best_us = min(timeit.repeat(round_trip, number=500, repeat=5)) / 500 * 1e6
    assert best_us < 150, f"encode + decode took {best_us:.1f} µs"


def test_link_budget_frame_sizes_are_the_ones_protocol_md_states():
    """PROTOCOL.md's "Link budget" sizes (26 + 4 C and 44 + 8 M + 4 T bytes) are the frames'."""
    from firmware_bridge.link import DEFAULT_BAUD

    text = (REPO / "firmware_bridge" / "PROTOCOL.md").read_text()
    assert "26 + 4 C bytes" in text and "44 + 8 M + 4 T bytes" in text
    for channels in (1, 3, 5, 8):
        sample = JointSample(
            seq=7, timestamp_us=9, values=(0.5,) * channels, valid_mask=(1 << channels) - 1
        )
        assert len(encode(sample)) == 26 + 4 * channels
    for muscles, torques in ((1, 1), (10, 3), (10, 5), (20, 5)):
        estimate = Estimate(
            seq=1,
            timestamp_us=2,
            sample_seq=3,
            sample_timestamp_us=4,
            activations=(0.5,) * muscles,
            forces=(100.0,) * muscles,
            torques=(10.0,) * torques,
        )
        assert len(encode(estimate)) == 44 + 8 * muscles + 4 * torques
    ten_five = 44 + 8 * 10 + 4 * 5
    assert 1000 * ten_five <= DEFAULT_BAUD / 10  # the default link holds 1 kHz of them
    assert f"{DEFAULT_BAUD:,} bit/s (edge-run's default `--baud`)" in text
