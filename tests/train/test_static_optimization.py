"""Planar static optimisation: synthetic frames with known solutions, and train-so on real data."""

from pathlib import Path

import numpy as np
import pytest
from helpers.paths import GAIT2392 as DATA
from scipy.optimize import minimize

from calib.subject import load_subject
from train.cli.so import main
from train.opensim_io import read_storage
from train.static_optimization import (
    StaticOptimizationConfig,
    StaticOptimizationError,
    residual_columns,
    solve_frame,
)

CONFIG = StaticOptimizationConfig()


def one_joint(torques_per_activation):
    """B (3, M) for muscles acting on the hip only."""
    b = np.zeros((3, len(torques_per_activation)))
    b[0] = torques_per_activation
    return b


def test_two_identical_muscles_share_the_torque_equally():
    b = one_joint([50.0, 50.0])  # N m at full activation
    a, residual = solve_frame(b, np.zeros(3), np.array([30.0, 0.0, 0.0]), CONFIG)
    np.testing.assert_allclose(a, [0.3, 0.3], atol=1e-3)
    assert np.all(np.abs(residual) < 0.05)


def test_stronger_muscle_takes_more_in_proportion_to_its_strength():
    # minimise a1^2 + a2^2 subject to 40 a1 + 80 a2 = 40: a = (0.2, 0.4)
    a, _ = solve_frame(one_joint([40.0, 80.0]), np.zeros(3), np.array([40.0, 0, 0]), CONFIG)
    np.testing.assert_allclose(a, [0.2, 0.4], atol=1e-3)


def test_antagonist_rests_on_the_lower_bound_and_its_torque_is_counted():
    b = one_joint([100.0, -100.0])  # agonist and antagonist
    a, residual = solve_frame(b, np.zeros(3), np.array([20.0, 0.0, 0.0]), CONFIG)
    assert a[1] == pytest.approx(0.01, abs=1e-9)
    # the agonist also overcomes the resting antagonist: 100 a0 - 1 = 20
    assert a[0] == pytest.approx(0.21, abs=1e-3)
    assert abs(residual[0]) < 0.05


def test_infeasible_torque_saturates_and_reports_the_residual():
    b = one_joint([50.0, 50.0])
    a, residual = solve_frame(b, np.zeros(3), np.array([160.0, 0.0, 0.0]), CONFIG)
    np.testing.assert_allclose(a, [1.0, 1.0])
    assert residual[0] == pytest.approx(60.0, abs=1e-6)
    np.testing.assert_allclose(residual[1:], 0.0, atol=1e-9)


def test_a_joint_no_muscle_crosses_is_left_entirely_as_residual():
    b = one_joint([50.0, 50.0])
    a, residual = solve_frame(b, np.zeros(3), np.array([10.0, 0.0, -25.0]), CONFIG)
    assert residual[2] == pytest.approx(-25.0, abs=1e-9)
    np.testing.assert_allclose(a, [0.1, 0.1], atol=1e-3)


def test_passive_offset_is_subtracted_before_the_muscles_share():
    b = one_joint([50.0, 50.0])
    a, _ = solve_frame(b, np.array([10.0, 0.0, 0.0]), np.array([40.0, 0.0, 0.0]), CONFIG)
    np.testing.assert_allclose(a, [0.3, 0.3], atol=1e-3)


def test_matches_an_equality_constrained_qp_on_a_random_feasible_frame():
    rng = np.random.default_rng(3)
    b = rng.normal(0.0, 40.0, size=(3, 12))
    a_true = rng.uniform(0.1, 0.6, size=12)
    tau = b @ a_true  # feasible by construction
    a, residual = solve_frame(b, np.zeros(3), tau, CONFIG)
    reference = minimize(
        lambda x: x @ x,
        x0=np.full(12, 0.5),
        jac=lambda x: 2 * x,
        bounds=[(0.01, 1.0)] * 12,
        constraints={"type": "eq", "fun": lambda x: b @ x - tau, "jac": lambda x: b},
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    assert reference.success
    np.testing.assert_allclose(a, reference.x, atol=2e-3)
    assert np.all(np.abs(residual) < 0.05)
    assert a @ a <= a_true @ a_true + 1e-9


def test_bad_config_is_refused():
    with pytest.raises(StaticOptimizationError, match="bounds"):
        StaticOptimizationConfig(min_activation=0.5, max_activation=0.2)
    with pytest.raises(StaticOptimizationError, match="reserve"):
        StaticOptimizationConfig(reserve_torque_nm=0.0)


@pytest.fixture(scope="module")
def default_subject_file(gait2392, tmp_path_factory):
    from calib import default_subject

    path = tmp_path_factory.mktemp("subject") / "subject.json"
    default_subject().save(path)
    return path


def real_trial_so(subject: Path, prefix: Path, *options: str) -> int:
    """train-so on the shared trial."""
    return main(
        [
            "--ik", str(DATA / "subject01_walk1_ik.mot"),
            "--grf", str(DATA / "subject01_walk1_grf.mot"),
            "--loads", str(DATA / "subject01_walk1_grf.xml"),
            "--subject", str(subject), "-o", str(prefix), "--quiet", *options,
        ]
    )  # fmt: skip


def test_train_so_cli_writes_four_storages_on_real_data(default_subject_file, tmp_path, capsys):
    prefix = tmp_path / "so"
    rc = real_trial_so(default_subject_file, prefix, "--start", "1.0", "--end", "1.2")
    assert rc == 0
    out = capsys.readouterr().out
    assert "ms per frame" in out
    # the GRF ends at 2.5 s: the overlap line says the IK's last 1.5 s were dropped
    assert "kept 0.500-2.500 s, dropped IK 2.500-4.000 s, GRF 0.000-0.500 s; 201 frames" in out
    muscles = load_subject(default_subject_file).muscle_names
    activation = read_storage(f"{prefix}_activation.sto")
    assert activation.columns == muscles
    assert activation.time.size == 21  # 1.00..1.20 s at 100 Hz
    assert np.all((activation.data >= 0.01 - 1e-9) & (activation.data <= 1.0 + 1e-9))
    force = read_storage(f"{prefix}_force.sto")
    active = read_storage(f"{prefix}_active_force.sto")
    assert np.all(force.data >= active.data - 1e-6)  # total = active + passive >= active
    residual = read_storage(f"{prefix}_residual.sto")
    assert (
        residual.columns
        == residual_columns("r")
        == tuple(
            f"{c}_r_residual"
            for c in ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle")
        )
    )
    # single stance (1.0-1.2 s): the ankle plantarflexors are loaded
    gastrocnemii = [muscles.index(m) for m in muscles if "gas" in m]
    assert activation.data[:, gastrocnemii].max() > 0.05


def test_train_so_cli_turns_bad_input_into_one_line(tmp_path, capsys):
    rc = main(
        [
            "--ik", str(tmp_path / "missing.mot"),
            "--grf", str(tmp_path / "missing_grf.mot"),
            "--loads", str(tmp_path / "missing.xml"),
            "--subject", str(tmp_path / "missing.json"),
            "-o", str(tmp_path / "out"),
        ]
    )  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train-so: error:")


def test_train_so_refuses_a_span_beyond_the_data_and_writes_nothing(
    default_subject_file, tmp_path, capsys
):
    """The trial is 0.5-2.5 s (the GRF ends there): --end 3.5 is refused, not cut."""
    rc = real_trial_so(default_subject_file, tmp_path / "so", "--start", "0.5", "--end", "3.5")
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--end 3.5 s is outside the data" in err[0] and "0.500-2.500 s" in err[0]
    assert "give --end between 0.500 and 2.500" in err[0]
    assert not list(tmp_path.iterdir())


TEN = (
    "psoas_r", "rect_fem_r", "bifemlh_r", "semimem_r", "iliacus_r",
    "vas_int_r", "vas_lat_r", "vas_med_r", "lat_gas_r", "med_gas_r",
)  # fmt: skip


@pytest.fixture(scope="module")
def subject01_trial(gait2392):
    """Generic gait2392 scaled to subject01 (1.916 m, 72.6 kg), all 43 muscles, and its trial."""
    from calib.scaling import generic_subject, scale_subject
    from train.trial import load_trial

    subject = scale_subject(generic_subject(), 1.916, 72.6)
    trial = load_trial(
        DATA / "subject01_walk1_ik.mot",
        DATA / "subject01_walk1_grf.mot",
        DATA / "subject01_walk1_grf.xml",
        subject,
        100.0,
        "r",
    )
    return subject, trial


def test_required_torques_follow_the_torques_of_opensims_muscles(subject01_trial, so_force):
    """tau_req against sum r F of OpenSim's static-optimisation forces (its ID, in effect),
    for all five coordinates."""
    from train.metrics import r_squared
    from train.physics_targets import PhysicsOptions, required_torques
    from train.trial import noncausal_derivatives

    subject, trial = subject01_trial
    forces = read_storage(so_force)
    t = forces.time[(forces.time >= 0.55) & (forces.time <= 2.45)]
    q = np.column_stack([np.interp(t, trial.time, trial.q[:, j]) for j in range(5)])
    opensim = np.einsum(
        "nmj,nm->nj",
        subject.moment_arms(q),
        np.column_stack(
            [np.interp(t, forces.time, forces.column(m)) for m in subject.muscle_names]
        ),
    )
    qd, qdd = noncausal_derivatives(trial.q, trial.rate_hz)
    scores = {}
    for base_motion in (True, False):
        tau = required_torques(trial, subject, qd, qdd, PhysicsOptions(base_motion=base_motion))
        ours = np.column_stack([np.interp(t, trial.time, tau[:, j]) for j in range(5)])
        scores[base_motion] = r_squared(opensim, ours)
    # hip flexion, adduction, rotation, knee, ankle; a sign error gives < 0
    assert np.all(scores[True] > 0.8), scores
    assert scores[True][0] > scores[False][0] + 0.1  # the pelvis's motion matters at the hip


def test_five_coordinate_so_tracks_opensim_and_the_sagittal_one_cannot(
    subject01_trial, so_activation
):
    from calib.coordinates import SAGITTAL_COORDINATES
    from train.metrics import align, score
    from train.static_optimization import StaticOptimizationConfig, static_optimization

    subject, trial = subject01_trial
    labels = read_storage(so_activation)
    mean_r2 = {}
    for name, balanced in (("five", subject.coordinates), ("sagittal", SAGITTAL_COORDINATES)):
        config = StaticOptimizationConfig(balanced=balanced)
        result = static_optimization(subject, trial, config, start_s=0.55, end_s=2.5)
        columns = [subject.muscle_names.index(m) for m in TEN]
        aligned = align(
            labels.time, labels.columns_of(list(TEN)), result.time,
            result.activation[:, columns], TEN, 0.55, 2.5,
        )  # fmt: skip
        mean_r2[name] = score(aligned).mean_r2
        assert np.abs(result.residual).max() < 0.5
    # the frontal and transverse hip moments are what the sagittal balance misses
    assert mean_r2["five"] > 0.8 and mean_r2["sagittal"] < mean_r2["five"] - 0.2, mean_r2
