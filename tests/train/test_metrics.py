"""R^2 (eq. 33) and NRMSE (eq. 34) on textbook values, and time alignment."""

import numpy as np
import pytest

from train.metrics import MetricsError, align, nrmse, r_squared, score


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
