"""The C codec against the Python codec: same bytes, same messages, same error counts.

The tests compile firmware_bridge/c/mjca_bridge.c with the system compiler, warnings
as errors, together with tests/firmware_bridge/c/bridge_vectors.c, then feed it frames
the Python codec encoded (plus garbage) and decode with Python what C encoded. The
example firmware main loop is tested in test_bridge_example_firmware.py.
"""

import math
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from helpers.bridge_version_1_0 import as_version_1_0, three_torque_estimate
from helpers.paths import REPO

from firmware_bridge import protocol as P
from firmware_bridge.codec import (
    Estimate,
    Heartbeat,
    Hello,
    JointSample,
    StreamDecoder,
    encode,
)

C_DIR = REPO / "firmware_bridge" / "c"
DRIVER = Path(__file__).resolve().parent / "c" / "bridge_vectors.c"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O1"]


SANITIZERS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


def compile_driver(directory: Path, extra: list[str]) -> subprocess.CompletedProcess:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no system C compiler `cc` on PATH")
    return subprocess.run(
        [
            cc,
            *CFLAGS,
            *extra,
            f"-I{C_DIR}",
            str(C_DIR / "mjca_bridge.c"),
            str(DRIVER),
            "-o",
            str(directory / "bridge_vectors"),
        ],
        check=False,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    directory = tmp_path_factory.mktemp("c")
    result = compile_driver(directory, [])
    assert result.returncode == 0, f"C codec does not compile warning-free:\n{result.stderr}"
    return directory / "bridge_vectors"


@pytest.fixture(scope="module")
def sanitized_driver(tmp_path_factory):
    """The driver built with AddressSanitizer and UBSan, where the compiler has them."""
    directory = tmp_path_factory.mktemp("c_sanitized")
    result = compile_driver(directory, SANITIZERS)
    if result.returncode != 0:
        pytest.skip(f"the C compiler cannot build with sanitizers: {result.stderr[:200]}")
    return directory / "bridge_vectors"


def run(driver, mode, stdin=""):
    result = subprocess.run(
        [str(driver), mode], check=False, input=stdin, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def describe(message) -> str:
    """The driver's text form of a message, built from the protocol table."""
    layout = next(m for m in P.MESSAGES if m.name == type(message).__name__)
    parts = [layout.name, f"seq={message.seq}", f"timestamp_us={message.timestamp_us}"]
    for f in layout.fields:
        if f.role == "reserved":
            continue
        if f.role == "count":
            parts.append(f"{f.name}={len(getattr(message, f.counts))}")
            continue
        value = getattr(message, f.name)
        if f.wire_type == "str":
            text = ",".join(name.encode("utf-8").hex() for name in value)
        elif f.wire_type == "v32":
            char = "f" if message.encoding == P.ENCODING_RADIANS else "i"
            text = ",".join(
                f"0x{struct.unpack('<I', struct.pack('<' + char, v))[0]:08x}" for v in value
            )
        elif f.wire_type == "f32" and f.length is not None:
            text = ",".join(f"0x{_bits(v):08x}" for v in value)
        elif f.wire_type == "f32":
            parts.append(f"{f.name}=0x{_bits(value):08x}")
            continue
        else:
            parts.append(f"{f.name}={value}")
            continue
        parts.append(f"{f.name}=[{text}]")
    return " ".join(parts)


def _bits(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def _f32(rng: random.Random) -> float:
    special = [0.0, -0.0, math.inf, -math.inf, math.nan, 1e-45, 3.4e38, 1.0]
    value = rng.choice(special) if rng.random() < 0.2 else rng.uniform(-2000.0, 2000.0)
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _name(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_μé0") for _ in range(length))


def vectors(seed: int = 5, n: int = 240) -> list:
    """Messages of every type, sizes from empty to the protocol's limits."""
    rng = random.Random(seed)

    def u32():
        return rng.choice([0, 1, 0xFFFFFFFF, rng.getrandbits(32)])

    out = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            m = rng.choice([0, 1, 10, rng.randrange(P.MAX_MUSCLES + 1), P.MAX_MUSCLES])
            out.append(
                Estimate(
                    seq=u32(),
                    timestamp_us=u32(),
                    sample_seq=u32(),
                    sample_timestamp_us=u32(),
                    activations=tuple(_f32(rng) for _ in range(m)),
                    forces=tuple(_f32(rng) for _ in range(m)),
                    torques=tuple(_f32(rng) for _ in range(rng.choice([0, 3, 5, P.MAX_TORQUES]))),
                    status=rng.getrandbits(16),
                    skipped=rng.getrandbits(16),
                    latency_us=u32(),
                    activation_age_us=u32(),
                )
            )
        elif kind in (1, 2):  # float32 radians, int32 counts
            c = rng.randrange(P.MAX_CHANNELS + 1)
            encoding = P.ENCODING_RADIANS if kind == 1 else P.ENCODING_COUNTS
            out.append(
                JointSample(
                    seq=u32(),
                    timestamp_us=u32(),
                    values=tuple(
                        _f32(rng)
                        if encoding == P.ENCODING_RADIANS
                        else rng.randrange(-(2**31), 2**31)
                        for _ in range(c)
                    ),
                    valid_mask=rng.getrandbits(16),
                    encoding=encoding,
                )
            )
        elif kind == 3:
            joints = rng.randrange(P.MAX_CHANNELS + 1)
            muscles = rng.choice([0, 10, P.MAX_MUSCLES])
            out.append(
                Hello(
                    seq=u32(),
                    timestamp_us=u32(),
                    role=rng.randrange(2),
                    sample_rate_hz=_f32(rng),
                    joint_names=tuple(_name(rng, rng.randrange(16)) for _ in range(joints)),
                    muscle_names=tuple(_name(rng, rng.choice([0, 5, 15])) for _ in range(muscles)),
                    encoding=rng.randrange(2),
                    heartbeat_period_ms=rng.getrandbits(16),
                    reply_requested=rng.randrange(2),
                )
            )
        else:
            out.append(
                Heartbeat(
                    seq=u32(),
                    timestamp_us=u32(),
                    role=rng.randrange(2),
                    heartbeat_period_ms=rng.getrandbits(16),
                    status=rng.getrandbits(16),
                )
            )
    return out


def chunked_hex(data: bytes, rng: random.Random) -> str:
    lines, i = [], 0
    while i < len(data):
        step = rng.randrange(1, 300)
        lines.append(data[i : i + step].hex())
        i += step
    return "\n".join(lines) + "\n"


def test_c_decodes_python_frames_and_reencodes_the_same_bytes(driver):
    messages = vectors()
    wire = b"".join(encode(m) for m in messages)
    lines = run(driver, "decode", chunked_hex(wire, random.Random(1)))
    described = [line[4:] for line in lines if line.startswith("MSG ")]
    reencoded = [bytes.fromhex(line[4:]) for line in lines if line.startswith("ENC ")]
    assert described == [describe(m) for m in messages]
    assert reencoded == [encode(m) for m in messages]
    assert lines[-1] == f"FRAMES {len(messages)}"
    assert lines[-2] == "ERRORS" + " 0" * len(P.ERROR_KINDS)


def test_c_and_python_drop_and_recover_the_same_frames(driver):
    rng = random.Random(7)
    stream = bytearray()
    for m in vectors(seed=11, n=120):
        frame = bytearray(encode(m))
        roll = rng.random()
        if roll < 0.15:
            frame[rng.randrange(len(frame) - 1)] ^= 1 + rng.randrange(255)  # corrupt
        elif roll < 0.3:
            stream += bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 40)))
        elif roll < 0.4:
            del frame[rng.randrange(len(frame) - 1)]  # a lost byte
        stream += frame
    python = StreamDecoder()
    expected = python.feed(bytes(stream))
    lines = run(driver, "decode", chunked_hex(bytes(stream), rng))
    described = [line[4:] for line in lines if line.startswith("MSG ")]
    assert described == [describe(m) for m in expected]
    assert 60 < len(expected) < 120
    errors = [int(v) for v in lines[-2].split()[1:]]
    assert errors == [python.errors[kind] for kind, _ in P.ERROR_KINDS]
    assert sum(errors) > 0


def test_c_reads_version_1_0_estimates_with_their_1_0_meaning(driver):
    """A 1.0 host's Estimate: byte 17 reserved, three torques, no activation age."""
    old = three_torque_estimate(status=P.STATUS["INPUT_GAP"], skipped=1, latency_us=300)
    lines = run(driver, "decode", as_version_1_0(old).hex() + "\n")
    assert [line[4:] for line in lines if line.startswith("MSG ")] == [describe(old)]
    assert "n_torques=3" in describe(old) and "activation_age_us=0" in describe(old)
    assert lines[-1] == "FRAMES 1"


def test_python_decodes_what_the_c_firmware_encodes(driver):
    lines = run(driver, "firmware")
    decoded = [StreamDecoder().feed(bytes.fromhex(line)) for line in lines]
    expected = [
        JointSample(seq=42, timestamp_us=4294967000, values=(0.25, -1.0, 0.125), valid_mask=5),
        JointSample(
            seq=43,
            timestamp_us=4294967000,
            values=(4096, -123456, 0),
            valid_mask=5,
            encoding=P.ENCODING_COUNTS,
        ),
        Hello(
            seq=0,
            timestamp_us=17,
            role=P.ROLE_DEVICE,
            sample_rate_hz=100.0,
            joint_names=("hip_flexion_r", "knee_angle_r", "ankle_angle_r"),
            reply_requested=1,
        ),
        Heartbeat(seq=9, timestamp_us=1_000_000, role=P.ROLE_DEVICE, heartbeat_period_ms=100),
    ]
    assert decoded == [[m] for m in expected]
    assert [bytes.fromhex(line) for line in lines] == [encode(m) for m in expected]


def test_host_watchdog_fails_safe(driver):
    assert run(driver, "watch") == ["watch ok"]


def test_c_decoder_survives_garbage_and_mutations_under_sanitizers(sanitized_driver):
    """Random bytes and mutated frames: no memory error, and the same verdicts as Python."""
    rng = random.Random(13)
    stream = bytearray()
    for m in vectors(seed=17, n=150):
        stream += bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400)))
        frame = bytearray(encode(m))
        for _ in range(rng.randrange(0, 3)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        stream += frame
    python = StreamDecoder()
    expected = python.feed(bytes(stream))
    lines = run(sanitized_driver, "decode", chunked_hex(bytes(stream), rng))
    assert [line[4:] for line in lines if line.startswith("MSG ")] == [
        describe(m) for m in expected
    ]
    assert [int(v) for v in lines[-2].split()[1:]] == [
        python.errors[kind] for kind, _ in P.ERROR_KINDS
    ]
    assert len(expected) > 20
    assert run(sanitized_driver, "watch") == ["watch ok"]
    assert len(run(sanitized_driver, "firmware")) == 4
