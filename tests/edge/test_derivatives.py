"""The causal estimator the network's inputs depend on: exact on polynomials, causal, rate-aware."""

import numpy as np
import pytest

from edge.derivatives import (
    DERIVATIVE_TAPS,
    causal_derivative_weights,
    history_length,
    network_inputs,
    resample_uniform,
)


@pytest.mark.parametrize("rate_hz", [60.0, 100.0, 1000.0])
def test_exact_on_quadratic_trajectories(rate_hz):
    t = np.arange(40) / rate_hz
    coefficients = np.array([[0.3, -1.2, 4.0], [-0.5, 2.0, -7.5], [0.1, 0.4, 12.0]])
    q = np.stack([c[0] + c[1] * t + c[2] * t**2 for c in coefficients], axis=1)
    features = network_inputs(q, rate_hz)
    newest = t[DERIVATIVE_TAPS - 1 :]
    for joint, c in enumerate(coefficients):
        np.testing.assert_allclose(features[:, 3 * joint], q[DERIVATIVE_TAPS - 1 :, joint])
        np.testing.assert_allclose(features[:, 3 * joint + 1], c[1] + 2 * c[2] * newest, atol=1e-9)
        np.testing.assert_allclose(features[:, 3 * joint + 2], 2 * c[2], atol=1e-6)


def test_estimate_is_causal():
    rate_hz = 100.0
    q = np.random.default_rng(0).normal(size=(30, 3))
    before = network_inputs(q, rate_hz)
    changed = q.copy()
    changed[20:] += 5.0
    after = network_inputs(changed, rate_hz)
    rows_before_change = 20 - (DERIVATIVE_TAPS - 1)
    np.testing.assert_array_equal(before[:rows_before_change], after[:rows_before_change])
    assert not np.allclose(before[rows_before_change], after[rows_before_change])


def test_weights_scale_with_rate():
    v100, a100 = causal_derivative_weights(100.0)
    v200, a200 = causal_derivative_weights(200.0)
    np.testing.assert_allclose(v200, 2 * v100)
    np.testing.assert_allclose(a200, 4 * a100)
    assert abs(v100.sum()) < 1e-9 and abs(a100.sum()) < 1e-9


def test_resampling_from_an_irregular_device_clock_matches_the_grid():
    rng = np.random.default_rng(1)
    device_t = np.cumsum(rng.uniform(0.0008, 0.0012, size=400))
    keep = rng.random(400) > 0.05
    device_t = device_t[keep]
    q = np.stack([np.sin(2 * device_t), np.cos(3 * device_t), device_t], axis=1)
    n = history_length(20)
    grid = resample_uniform(device_t, q, device_t[-1], 100.0, n)
    expected_t = device_t[-1] - np.arange(n - 1, -1, -1) / 100.0
    expected = np.stack([np.sin(2 * expected_t), np.cos(3 * expected_t), expected_t], axis=1)
    np.testing.assert_allclose(grid, expected, atol=1e-5)


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="shape"):
        network_inputs(np.zeros(10), 100.0)
    with pytest.raises(ValueError, match="at least"):
        network_inputs(np.zeros((3, 3)), 100.0)
    with pytest.raises(ValueError, match="positive"):
        causal_derivative_weights(0.0)
