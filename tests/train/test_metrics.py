"""R^2 (eq. 33), NRMSE (eq. 34) and Pearson r on textbook values, when each is defined,
and time alignment."""

import json

import numpy as np
import pytest

from train.metrics import R2_MIN_RANGE, MetricsError, align, nrmse, pearson_r, r_squared, score


def test_perfect_prediction_scores_one_and_zero():
    y = np.sin(np.linspace(0, 6, 50))
    assert r_squared(y, y) == pytest.approx(1.0)
    assert nrmse(y, y) == pytest.approx(0.0)


def test_predicting_the_mean_scores_zero_r2():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert r_squared(y, np.full(4, 2.5)) == pytest.approx(0.0)


def test_known_values_by_hand():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    y_hat = np.array([0.5, 1.0, 2.0, 2.5])
    # residual sum 0.5, total sum 5.0; rmse sqrt(0.5/4), range 3
    assert r_squared(y, y_hat) == pytest.approx(0.9)
    assert nrmse(y, y_hat) == pytest.approx(np.sqrt(0.125) / 3.0)


def test_worse_than_mean_is_negative_and_columns_are_independent():
    y = np.column_stack([np.arange(5.0), np.arange(5.0) ** 2])
    y_hat = np.column_stack([np.arange(5.0)[::-1], np.arange(5.0) ** 2])
    r2 = r_squared(y, y_hat)
    assert r2.shape == (2,)
    assert r2[0] == pytest.approx(-3.0)  # residual 40 over total 10
    assert r2[1] == pytest.approx(1.0)


def test_constant_reference_is_undefined():
    y = np.ones(6)
    assert np.isnan(r_squared(y, y + 0.1))
    assert np.isnan(nrmse(y, y + 0.1))


def test_shape_mismatch_and_nan_are_refused():
    with pytest.raises(MetricsError, match="same shape"):
        r_squared(np.ones(3), np.ones(4))
    with pytest.raises(MetricsError, match="NaN"):
        nrmse(np.array([0.0, np.nan, 1.0]), np.zeros(3))


def test_align_interpolates_prediction_onto_reference_times_in_the_span():
    t_ref = np.arange(0.5, 2.5 + 1e-9, 1 / 60)
    t_pred = np.arange(0.6, 2.4 + 1e-9, 1 / 100)
    ref = np.column_stack([t_ref, 2 * t_ref])
    pred = np.column_stack([t_pred, 2 * t_pred])  # linear: interpolation is exact
    aligned = align(t_ref, ref, t_pred, pred, ("a", "b"), start_s=0.55, end_s=2.5)
    assert aligned.time[0] >= 0.6 - 1e-9 and aligned.time[-1] <= 2.4 + 1e-9
    np.testing.assert_array_equal(
        aligned.time, t_ref[(t_ref >= 0.6 - 1e-9) & (t_ref <= 2.4 + 1e-9)]
    )
    np.testing.assert_allclose(aligned.prediction, aligned.reference, atol=1e-12)
    scores = score(aligned)
    np.testing.assert_allclose(scores.r2, 1.0)
    assert scores.samples == aligned.time.size
    assert scores.to_dict()["mean"]["r2"] == pytest.approx(1.0)


def test_align_refuses_disjoint_spans():
    t = np.linspace(0, 1, 11)
    with pytest.raises(MetricsError, match="common span"):
        align(t, t[:, None], t + 5, t[:, None], ("a",))


def test_pearson_r_by_hand_and_blind_to_offset_and_scale():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert pearson_r(y, 10 * y + 3) == pytest.approx(1.0)
    assert pearson_r(y, -y) == pytest.approx(-1.0)
    # y - mean = (-1.5, -0.5, 0.5, 1.5), p - mean = (-1, 1, -1, 1): products sum to 2,
    # squares to 5 and 4
    assert pearson_r(y, np.array([0.0, 2.0, 0.0, 2.0])) == pytest.approx(2 / np.sqrt(20))
    assert np.isnan(pearson_r(y, np.ones(4)))


def flat_and_moving(n=200):
    """Column 0 moves by 0.4; column 1 sits at 0.01 with round-off, the estimate at 0.02."""
    t = np.linspace(0, 2, n)
    reference = np.column_stack([0.3 + 0.2 * np.sin(2 * np.pi * t), 0.01 + 1e-17 * np.sin(7 * t)])
    prediction = np.column_stack([0.3 + 0.18 * np.sin(2 * np.pi * t - 0.1), np.full(n, 0.02)])
    return t, reference, prediction


def test_a_flat_reference_leaves_r2_undefined_and_nothing_explodes():
    t, reference, prediction = flat_and_moving()
    # what eq. (33) alone gives: an astronomically negative R^2 for the flat muscle
    assert r_squared(reference, prediction)[1] < -1e20
    scores = score(align(t, reference, t, prediction, ("moving", "flat")))
    assert np.isfinite(scores.r2[0]) and np.isnan(scores.r2[1])
    # NRMSE: eq. (34) where R^2 is defined; over 5 % of full scale (0.05) for the flat one
    assert scores.nrmse[0] == pytest.approx(nrmse(reference[:, 0], prediction[:, 0]))
    assert scores.nrmse[1] == pytest.approx(0.01 / R2_MIN_RANGE)
    assert np.isnan(scores.r[1])  # a constant estimate has no correlation
    assert scores.r[0] == pytest.approx(pearson_r(reference[:, 0], prediction[:, 0]))
    data = scores.to_dict()
    assert data["mean"]["r2"] == pytest.approx(scores.r2[0]) and data["mean"]["r2_muscles"] == 1
    assert data["mean"]["nrmse_muscles"] == 2 and data["mean"]["r_muscles"] == 1
    assert data["per_muscle"]["flat"]["r2"] is None
    json.dumps(data, allow_nan=False)  # no NaN or infinity reaches JSON


def test_the_rule_scales_with_full_scale():
    """A force that moves 40 N: R^2 defined for a 500 N muscle (8 %), not for a 1000 N one."""
    t = np.linspace(0, 1, 50)
    reference = 100 + 20 * np.sin(2 * np.pi * t)
    prediction = reference + 1.0
    aligned = align(t, reference[:, None], t, prediction[:, None], ("m",))
    assert np.isfinite(score(aligned, full_scale=500.0).r2[0])
    strong = score(aligned, full_scale=1000.0)
    assert np.isnan(strong.r2[0]) and strong.nrmse[0] == pytest.approx(1.0 / 50.0)
    with pytest.raises(MetricsError, match="full scale"):
        score(aligned, full_scale=0.0)
