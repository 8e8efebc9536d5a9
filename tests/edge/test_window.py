"""The runtime's ring buffer and window builder equal the offline computation exactly."""

import numpy as np
import pytest

from edge.derivatives import network_inputs, resample_uniform
from edge.ring_buffer import SampleRing
from edge.window import WindowBuilder, WindowSpec, offline_window


def _device_stream(rate_hz, seconds, seed, drop_every=0):
    """Jittery device timestamps (s) with optional dropped samples, and smooth angles (rad)."""
    rng = np.random.default_rng(seed)
    n = int(rate_hz * seconds)
    t = np.arange(n) / rate_hz + rng.uniform(-0.2, 0.2, n) / rate_hz
    keep = np.ones(n, bool)
    if drop_every:
        keep[::drop_every] = False
    t = t[keep]
    q = np.stack(
        [
            0.4 * np.sin(2 * np.pi * 0.8 * t),
            -0.6 + 0.5 * np.cos(2 * np.pi * 0.8 * t),
            0.1 * np.sin(2 * np.pi * 1.6 * t),
        ],
        axis=1,
    )
    return t, q


def test_ring_returns_newest_samples_in_order_across_wraps():
    ring = SampleRing(capacity=5)
    for i in range(13):
        ring.push(i, 0.01 * i, np.array([i, -i, 2.0 * i]))
        k = min(i + 1, 5)
        assert len(ring) == k
        np.testing.assert_array_equal(ring.seqs(), np.arange(i - k + 1, i + 1))
        np.testing.assert_allclose(ring.times(), 0.01 * np.arange(i - k + 1, i + 1))
        np.testing.assert_array_equal(ring.angles()[:, 1], -np.arange(i - k + 1, i + 1))
        assert ring.newest_time == pytest.approx(0.01 * i)
    np.testing.assert_array_equal(ring.seqs(2), [11, 12])
    with pytest.raises(ValueError, match="newest 6 samples"):
        ring.times(6)
    ring.clear()
    assert len(ring) == 0


@pytest.mark.parametrize(
    ("device_hz", "drop_every", "lookahead"),
    [(1000.0, 0, 0), (1000.0, 7, 2), (200.0, 0, 5), (100.0, 0, 0), (60.0, 3, 0)],
)
def test_every_window_equals_offline_inputs(device_hz, drop_every, lookahead):
    spec = WindowSpec(window=20, rate_hz=100.0, lookahead=lookahead)
    t, q = _device_stream(device_hz, 0.6, seed=int(device_hz), drop_every=drop_every)
    ring = SampleRing(capacity=int(spec.history_s * device_hz * 1.5) + 8)
    builder = WindowBuilder(spec)
    built = 0
    for i in range(len(t)):
        ring.push(i, t[i], q[i])
        expected_ready = t[i] - spec.history_s >= t[0]
        assert builder.ready(ring) == expected_ready
        if not expected_ready:
            continue
        x = builder.build(ring)
        assert x.shape == (1, 20, 9) and x.dtype == np.float32
        np.testing.assert_array_equal(x, offline_window(t, q, t[i], spec))
        full = network_inputs(resample_uniform(t[: i + 1], q[: i + 1], t[i], 100.0, 24), 100.0)
        row = full[19 - lookahead]
        np.testing.assert_array_equal(builder.answered_angles, row[0::3])
        np.testing.assert_allclose(builder.answered_velocities, row[1::3], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(builder.features, full, rtol=1e-12, atol=1e-9)
        built += 1
    assert built > 0.5 * len(t) - spec.history_s * device_hz


def test_lookahead_row_is_n_model_steps_behind_the_newest_sample():
    spec = WindowSpec(window=20, rate_hz=100.0, lookahead=3)
    assert spec.answered_row == 16 and spec.delay_s == pytest.approx(0.03)
    t = np.arange(0, 0.5, 0.001)
    q = np.stack([t, 2 * t, -t], axis=1)  # angle equals a known function of time
    ring = SampleRing(capacity=400)
    builder = WindowBuilder(spec)
    for i in range(len(t)):
        ring.push(i, t[i], q[i])
    builder.build(ring)
    np.testing.assert_allclose(
        builder.answered_angles, q[-1] - 0.03 * np.array([1, 2, -1]), atol=1e-12
    )
    np.testing.assert_allclose(builder.answered_velocities, [1, 2, -1], atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0, "rate_hz": 100.0}, "window"),
        ({"window": 20, "rate_hz": 0.0}, "rate"),
        ({"window": 20, "rate_hz": 100.0, "lookahead": 20}, "lookahead"),
    ],
)
def test_bad_window_spec_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WindowSpec(**kwargs)
