"""The OpenSim importer against OpenSim itself: paths on poses the fit never saw, segments
computed another way, joint axes against OpenSim's body orientations."""

import numpy as np
import pytest
from helpers.paths import GENERIC_MODEL as GENERIC
from helpers.paths import SUBJECT01_MODEL as SUBJECT01
from scipy.spatial.transform import Rotation

from calib import COORDINATES, SubjectError, default_subject
from calib.osim_import import check_box, import_osim, random_poses, resolve_muscles
from calib.osim_model import OsimModel
from calib.scaling import GENERIC_HEIGHT_M, generic_subject

opensim = pytest.importorskip(
    "opensim", reason="the opensim extra (official bindings) is not installed"
)
pytestmark = [pytest.mark.needs_data, pytest.mark.slow]  # fixtures import subject01 via OpenSim

# One muscle per kind of path: four coordinates with conditional via points (semimem_r),
# a knee-ankle muscle (med_gas_r), the knee alone through the patella's moving points
# (vas_lat_r), the three hip coordinates over a wrapping surface (psoas_r), the ankle alone.
MUSCLES = "semimem_r,med_gas_r,vas_lat_r,psoas_r,tib_ant_r"
CROSSES = {
    "semimem_r": ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle"),
    "med_gas_r": ("knee_angle", "ankle_angle"),
    "vas_lat_r": ("knee_angle",),
    "psoas_r": ("hip_flexion", "hip_adduction", "hip_rotation"),
    "tib_ant_r": ("ankle_angle",),
}


@pytest.fixture(scope="module")
def model():
    return OsimModel(SUBJECT01)


@pytest.fixture(scope="module")
def imported():
    return import_osim(
        SUBJECT01,
        muscles=MUSCLES,
        height=1.80,
        progress=False,
        train_poses=2048,
        held_out_poses=512,
        validation_poses=60,
    )


def _rms_errors(subject, model, q):
    """Per muscle: length RMS (M,) and moment-arm RMS per coordinate (M, 5), against OpenSim."""
    names = list(subject.muscle_names)
    length = model.lengths(names, q)
    arms = model.opensim_moment_arms(names, q)
    length_rms = np.sqrt(np.mean((subject.muscle_tendon_length(q) - length) ** 2, axis=0))
    arm_rms = np.sqrt(np.mean((subject.moment_arms(q) - arms) ** 2, axis=0))
    return length_rms, arm_rms, arms


def test_reported_errors_meet_the_targets(imported):
    assert [r.name for r in imported.reports] == MUSCLES.split(",")
    for r in imported.reports:
        assert r.validation.length_rms <= 1e-3, r
        assert max(r.validation.moment_arm_rms) <= 3e-3, r
        assert r.terms == len(imported.subject.muscles[imported.reports.index(r)].path.exponents)
    assert {r.name: r.crosses for r in imported.reports} == CROSSES


def test_polynomials_agree_with_opensim_on_unseen_poses(imported, model):
    subject = imported.subject
    q = random_poses(check_box(), 40, seed=7)
    length_rms, arm_rms, arms = _rms_errors(subject, model, q)
    names = subject.muscle_names
    assert np.all(length_rms < 1e-3), dict(zip(names, length_rms))
    assert np.all(arm_rms < 3e-3), dict(zip(names, arm_rms.tolist()))
    # Moment arms about each coordinate are large enough here that agreeing means something.
    assert np.all(np.abs(arms).max(axis=(0, 1)) > 0.003)


def test_segments_match_opensim_computed_another_way(imported, model):
    """Masses summed, centres of mass and inertia from equivalent point masses placed by
    OpenSim's own kinematics (no rotation or parallel-axis algebra of calib's)."""
    subject = imported.subject
    bodies = model.model.getBodySet()
    parts = {"thigh": ("femur_r",), "shank": ("tibia_r",), "foot": ("talus_r", "calcn_r", "toes_r")}
    state = model.state
    model.default_pose()
    hip = _ground(bodies.get("femur_r").getPositionInGround(state))
    proximal = {
        "thigh": hip,
        "shank": _ground(bodies.get("tibia_r").getPositionInGround(state)),
        "foot": _ground(bodies.get("talus_r").getPositionInGround(state)),
    }
    leg_mass = sum(bodies.get(b).getMass() for names in parts.values() for b in names)
    assert sum(s.mass for s in subject.segments.values()) == pytest.approx(leg_mass, rel=1e-12)
    for name, body_names in parts.items():
        points, masses = [], []
        for b in body_names:
            p, m = _equivalent_point_masses(bodies.get(b), state)
            points += p
            masses += m
        points, masses = np.array(points), np.array(masses)
        com = masses @ points / masses.sum()
        d = points - com
        inertia = np.einsum(
            "n,nij->ij",
            masses,
            (d**2).sum(1)[:, None, None] * np.eye(3) - d[:, :, None] * d[:, None, :],
        )
        segment = subject.segments[name]
        assert segment.mass == pytest.approx(masses.sum(), rel=1e-12)
        np.testing.assert_allclose(segment.com, com - proximal[name], atol=1e-12)
        np.testing.assert_allclose(segment.inertia, inertia, atol=1e-12)
    # Joint centres: the next body's origin (gait2392's joint child frames are body origins).
    shank_end = _ground(bodies.get("talus_r").getPositionInGround(state))
    toes = _ground(bodies.get("toes_r").getPositionInGround(state))
    np.testing.assert_allclose(
        subject.segments["thigh"].distal_joint, proximal["shank"] - hip, atol=1e-12
    )
    np.testing.assert_allclose(
        subject.segments["shank"].distal_joint, shank_end - proximal["shank"], atol=1e-12
    )
    np.testing.assert_allclose(subject.segments["foot"].distal_joint, toes - shank_end, atol=1e-12)
    # The foot is not aligned with its principal axes: its tensor has products of inertia.
    assert abs(subject.segments["foot"].inertia[0][1]) > 1e-4
    pelvis = bodies.get("pelvis")
    hip_in_pelvis = model.model.getGround().findStationLocationInAnotherFrame(
        state, bodies.get("femur_r").getPositionInGround(state), pelvis
    )
    np.testing.assert_allclose(subject.hip_centre, _ground(hip_in_pelvis), atol=1e-12)
    assert subject.hip_centre[2] > 0.05


def _ground(vec3) -> np.ndarray:
    return np.array([vec3.get(0), vec3.get(1), vec3.get(2)])


def _equivalent_point_masses(body, state):
    """Six point masses with the body's mass, centre of mass and inertia (a pair on each
    principal axis), placed in ground by OpenSim."""
    inertia = body.getInertia()
    moments, products = _ground(inertia.getMoments()), _ground(inertia.getProducts())
    tensor = np.diag(moments)
    tensor[0, 1] = tensor[1, 0] = products[0]
    tensor[0, 2] = tensor[2, 0] = products[1]
    tensor[1, 2] = tensor[2, 1] = products[2]
    principal, axes = np.linalg.eigh(tensor)
    m = body.getMass()
    # I_k = (m/3) (s_i + s_j) for the other two axes' squared offsets s.
    s = 1.5 / m * (principal.sum() - 2 * principal)
    com = _ground(body.getMassCenter())
    points = []
    for k in range(3):
        for sign in (1.0, -1.0):
            local = com + sign * np.sqrt(s[k]) * axes[:, k]
            station = opensim.Vec3(*local)
            points.append(_ground(body.findStationLocationInGround(state, station)))
    return points, [m / 6] * 6


def _axis_product(joint, angles):
    out = np.eye(3)
    for axis, angle in zip(joint.axes, angles):
        out = out @ Rotation.from_rotvec(np.array(axis) * angle).as_matrix()
    return out


def test_joint_axes_reproduce_opensim_orientations(imported, model):
    joints = imported.subject.joints
    # gait2392's hip is z, x, y of the pelvis; its knee the femur's z; its ankle an oblique axis.
    np.testing.assert_allclose(joints["hip"].axes, np.eye(3)[[2, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(joints["knee"].axes, [[0.0, 0.0, 1.0]], atol=1e-12)
    ankle = np.array([-0.10501355, -0.17402245, 0.97912632])
    np.testing.assert_allclose(joints["ankle"].axes[0], ankle / np.linalg.norm(ankle), atol=1e-8)
    rest = {b: model.body_rotation(b, np.zeros(5)) for b in ("femur_r", "tibia_r", "talus_r")}
    for q in np.random.default_rng(5).uniform(-0.8, 0.8, (20, 5)):
        hip = _axis_product(joints["hip"], q[:3])
        knee = hip @ _axis_product(joints["knee"], q[3:4])
        ankle_rotation = knee @ _axis_product(joints["ankle"], q[4:5])
        for body, turned in (("femur_r", hip), ("tibia_r", knee), ("talus_r", ankle_rotation)):
            np.testing.assert_allclose(
                model.body_rotation(body, q), turned @ rest[body], atol=1e-12
            )


def _couple_the_knee(model):
    """gait2392's knee with a second rotation coupled to knee_angle: not a fixed-axis hinge."""
    knee = opensim.CustomJoint.safeDownCast(model.getJointSet().get("knee_r"))
    second = knee.upd_SpatialTransform().updTransformAxis(1)
    second.append_coordinates("knee_angle_r")
    second.set_function(opensim.LinearFunction(0.1, 0.0))


def _swap_the_hip_order(model):
    """The hip turning about adduction first, then flexion: same axes, another sequence."""
    hip = opensim.CustomJoint.safeDownCast(model.getJointSet().get("hip_r"))
    transform = hip.upd_SpatialTransform()
    for index, coordinate, axis in (
        (0, "hip_adduction_r", (1, 0, 0)),
        (1, "hip_flexion_r", (0, 0, 1)),
    ):
        rotation = transform.updTransformAxis(index)
        rotation.set_coordinates(0, coordinate)
        rotation.set_axis(opensim.Vec3(*map(float, axis)))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_couple_the_knee, "turning knee_angle_r by 1.0 rad turns knee_r by 1.00"),
        (_swap_the_hip_order, "the hip's rotation is not the sequence"),
    ],
)
def test_joints_calib_cannot_describe_are_refused(tmp_path, edit, message):
    source = opensim.Model(str(SUBJECT01))
    edit(source)
    source.finalizeConnections()
    path = tmp_path / "edited.osim"
    source.printToXML(str(path))
    with pytest.raises(SubjectError, match=message):
        import_osim(path, muscles="vas_lat_r", height=1.8, progress=False)


def test_shipped_default_subject_matches_the_generic_model():
    subject = default_subject()
    generic = OsimModel(GENERIC)
    q = random_poses(check_box(), 30, seed=11)
    length_rms, arm_rms, _ = _rms_errors(subject, generic, q)
    assert length_rms.max() < 1e-3
    assert arm_rms.max() < 3e-3
    assert generic_subject().body.height == GENERIC_HEIGHT_M
    assert subject.segments["thigh"].mass == pytest.approx(
        generic.model.getBodySet().get("femur_r").getMass()
    )
    assert subject.muscle_names == tuple(generic.right_leg_muscles()[:43])
    assert subject.coordinates == COORDINATES


def test_muscle_sets(model):
    with pytest.raises(SubjectError, match="no muscle named 'biceps_r'"):
        resolve_muscles(model, "psoas_r,biceps_r")
    assert resolve_muscles(model, "paper")[0] == "psoas_r"
    assert resolve_muscles(model, None) is None and resolve_muscles(model, "all") is None
    with pytest.raises(SubjectError, match="no moment arm"):
        import_osim(SUBJECT01, muscles="ercspn_r", height=1.8, progress=False, train_poses=64)
