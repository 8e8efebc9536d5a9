"""The estimate log: every submitted row written, readable as OpenSim storage or CSV."""

import numpy as np
import pytest

from edge.sinks import EstimateLog, LogError, log_columns
from train.opensim_io import read_storage

MUSCLES = ("PS", "RF", "BF")
COORDS = ("hip_flexion_r", "knee_angle_r", "ankle_angle_r")


def _rows(n):
    rng = np.random.default_rng(1)
    rows = np.empty((n, len(log_columns(MUSCLES, COORDS))))
    rows[:, 0] = np.arange(n) * 0.001
    rows[:, 1] = rows[:, 0] + 0.02
    rows[:, 2] = np.arange(n) + 7
    rows[:, 3] = np.arange(n) % 4
    rows[:, 4] = 0
    rows[:, 5] = rng.integers(100, 900, n)
    rows[:, 6] = rng.integers(0, 20000, n)
    rows[:, 7:] = rng.normal(size=(n, rows.shape[1] - 7)) * 300
    return rows


def test_sto_log_reads_back_with_every_row(tmp_path):
    rows = _rows(3000)
    path = tmp_path / "run.sto"
    with EstimateLog(path, MUSCLES, COORDS) as log:
        for row in rows:
            assert log.submit(row.copy())
    assert log.rows_written == 3000 and log.overflowed == 0 and log.error is None
    storage = read_storage(path)
    assert storage.columns[:3] == ("sample_time", "seq", "status")
    assert storage.columns[-1] == "ankle_angle_r_moment"
    np.testing.assert_allclose(storage.time, rows[:, 0], atol=1e-6)
    np.testing.assert_array_equal(storage.column("seq"), rows[:, 2])
    np.testing.assert_array_equal(storage.column("activation_age_us"), rows[:, 6])
    bf_force = log_columns(MUSCLES, COORDS).index("BF_force")
    np.testing.assert_allclose(storage.column("BF_force"), rows[:, bf_force], rtol=1e-8)


def test_csv_log_and_overflow_is_counted_not_blocking(tmp_path):
    path = tmp_path / "run.csv"
    rows = _rows(500)
    log = EstimateLog(path, MUSCLES, COORDS, queue_size=4)
    accepted = sum(log.submit(row.copy()) for row in rows)
    log.close()
    assert accepted + log.overflowed == 500
    assert log.rows_written == accepted
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    assert data.shape == (accepted, len(log.columns))
    header = path.read_text().splitlines()[0].split(",")
    assert header == list(log_columns(MUSCLES, COORDS))


def test_unwritable_log_is_one_clear_error(tmp_path):
    with pytest.raises(LogError, match="cannot write the estimate log"):
        EstimateLog(tmp_path / "missing" / "run.csv", MUSCLES, COORDS)
