"""Hypothesis strategies for every protocol message, within the protocol's limits."""

from __future__ import annotations

from hypothesis import strategies as st

from firmware_bridge import protocol as P
from firmware_bridge.codec import Estimate, Heartbeat, Hello, JointSample

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
name = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    max_size=P.MAX_NAME_BYTES // 4,
)

hellos = st.builds(
    Hello,
    seq=u32,
    timestamp_us=u32,
    role=st.sampled_from([P.ROLE_DEVICE, P.ROLE_HOST]),
    sample_rate_hz=f32,
    joint_names=st.lists(name, max_size=P.MAX_CHANNELS).map(tuple),
    muscle_names=st.lists(name, max_size=P.MAX_MUSCLES).map(tuple),
    encoding=st.sampled_from([P.ENCODING_RADIANS, P.ENCODING_COUNTS]),
    heartbeat_period_ms=u16,
    reply_requested=st.integers(0, 1),
)

heartbeats = st.builds(
    Heartbeat, seq=u32, timestamp_us=u32, role=u8, heartbeat_period_ms=u16, status=u16
)

radian_samples = st.builds(
    JointSample,
    seq=u32,
    timestamp_us=u32,
    values=st.lists(f32, max_size=P.MAX_CHANNELS).map(tuple),
    valid_mask=u16,
    encoding=st.just(P.ENCODING_RADIANS),
)

count_samples = st.builds(
    JointSample,
    seq=u32,
    timestamp_us=u32,
    values=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=P.MAX_CHANNELS).map(tuple),
    valid_mask=u16,
    encoding=st.just(P.ENCODING_COUNTS),
)


@st.composite
def estimates(draw):
    n = draw(st.integers(0, P.MAX_MUSCLES))
    values = st.lists(f32, min_size=n, max_size=n).map(tuple)
    return Estimate(
        seq=draw(u32),
        timestamp_us=draw(u32),
        sample_seq=draw(u32),
        sample_timestamp_us=draw(u32),
        activations=draw(values),
        forces=draw(values),
        torques=draw(st.lists(f32, max_size=P.MAX_TORQUES).map(tuple)),
        status=draw(u16),
        skipped=draw(u16),
        latency_us=draw(u32),
        activation_age_us=draw(u32),
    )


messages = st.one_of(hellos, heartbeats, radian_samples, count_samples, estimates())
