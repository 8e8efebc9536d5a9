"""The OpenSim importer against OpenSim itself, on poses the fit never saw."""

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "opensim-gait2392"
SUBJECT01 = DATA / "subject01_simbody_adjusted.osim"
GENERIC = DATA / "gait2392_thelen2003muscle.osim"

opensim = pytest.importorskip(
    "opensim", reason="the opensim extra (official bindings) is not installed"
)
if not SUBJECT01.is_file():
    pytest.skip(f"development data absent: {SUBJECT01}", allow_module_level=True)

from calib import default_subject
from calib.osim_import import OsimModel, import_osim, walking_box
from calib.scaling import GENERIC_HEIGHT_M, generic_subject

# One muscle per kind of path: conditional via points (vas_lat_r, semimem_r, med_gas_r),
# a biarticular knee-ankle muscle, a one-joint hip muscle with a wrap.
MUSCLES = "vas_lat_r,semimem_r,med_gas_r,psoas_r"


def _unseen_poses(n: int, seed: int) -> np.ndarray:
    box = walking_box()
    return box[:, 0] + np.random.default_rng(seed).random((n, 3)) * (box[:, 1] - box[:, 0])


def _crossed_rms(subject, error: np.ndarray) -> np.ndarray:
    """Per-muscle RMS of moment-arm errors (N, M, 3) over the joints each muscle crosses."""
    joints = ("hip", "knee", "ankle")
    return np.array(
        [
            np.sqrt(np.mean(error[:, k, [joints.index(j) for j in m.path.crosses]] ** 2))
            for k, m in enumerate(subject.muscles)
        ]
    )


@pytest.fixture(scope="module")
def model():
    return OsimModel(SUBJECT01)


@pytest.fixture(scope="module")
def imported():
    return import_osim(SUBJECT01, muscles=MUSCLES, height=1.80, progress=False, validation_poses=60)


def test_reported_errors_meet_the_targets(imported):
    assert [r.name for r in imported.reports] == MUSCLES.split(",")
    for r in imported.reports:
        assert r.validation.length_rms <= 1e-3, r
        assert r.validation.moment_arm_rms <= 3e-3, r
    crosses = {r.name: r.crosses for r in imported.reports}
    assert crosses == {
        "vas_lat_r": ("knee",),
        "semimem_r": ("hip", "knee"),
        "med_gas_r": ("knee", "ankle"),
        "psoas_r": ("hip",),
    }


def test_polynomials_agree_with_opensim_on_unseen_poses(imported, model):
    subject = imported.subject
    q = _unseen_poses(40, seed=7)
    names = list(subject.muscle_names)
    length = model.lengths(names, q)
    arms = model.opensim_moment_arms(names, q)
    length_rms = np.sqrt(np.mean((subject.muscle_tendon_length(q) - length) ** 2, axis=0))
    arm_rms = _crossed_rms(subject, subject.moment_arms(q) - arms)
    assert np.all(length_rms < 1e-3), dict(zip(names, length_rms))
    assert np.all(arm_rms < 3e-3), dict(zip(names, arm_rms))
    # Moment arms are large enough here that agreeing means something.
    assert np.abs(arms).max() > 0.03


def test_segments_and_parameters_come_from_the_model(imported, model):
    subject = imported.subject
    bodies = model.model.getBodySet()
    assert subject.segments["thigh"].mass == pytest.approx(bodies.get("femur_r").getMass())
    foot = sum(bodies.get(b).getMass() for b in ("talus_r", "calcn_r", "toes_r"))
    assert subject.segments["foot"].mass == pytest.approx(foot)
    assert subject.body.mass == pytest.approx(model.total_mass())
    # The shank hangs below the knee, the foot reaches forward of the ankle.
    assert subject.segments["shank"].distal_joint[1] < -0.3
    assert subject.segments["foot"].distal_joint[0] > 0.1
    vas = subject.muscles[0]
    opensim_vas = model.muscle("vas_lat_r")
    assert vas.max_isometric_force == opensim_vas.getMaxIsometricForce()
    assert vas.tendon_slack_length == opensim_vas.getTendonSlackLength()
    hip_lo, hip_hi = subject.joints["hip"].range
    assert hip_lo <= np.radians(-30) and hip_hi >= np.radians(60)


def test_shipped_default_subject_matches_the_generic_model():
    if not GENERIC.is_file():
        pytest.skip(f"development data absent: {GENERIC}")
    subject = default_subject()
    generic = OsimModel(GENERIC)
    q = _unseen_poses(30, seed=11)
    names = list(subject.muscle_names)
    length_err = subject.muscle_tendon_length(q) - generic.lengths(names, q)
    arm_err = subject.moment_arms(q) - generic.opensim_moment_arms(names, q)
    assert np.sqrt(np.mean(length_err**2, axis=0)).max() < 1e-3
    assert _crossed_rms(subject, arm_err).max() < 3e-3
    assert generic_subject().body.height == GENERIC_HEIGHT_M
    assert subject.segments["thigh"].mass == pytest.approx(
        generic.model.getBodySet().get("femur_r").getMass()
    )


def test_unknown_muscle_is_refused(model):
    from calib import SubjectError
    from calib.osim_import import resolve_muscles

    with pytest.raises(SubjectError, match="no muscle named 'biceps_r'"):
        resolve_muscles(model, "psoas_r,biceps_r")
