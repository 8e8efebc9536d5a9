"""subject.json: round trips, and every kind of bad field is refused with its name."""

import copy
import dataclasses
import json
import math

import numpy as np
import pytest

from calib import (
    COORDINATES,
    PAPER_MUSCLES,
    SAGITTAL_COORDINATES,
    SAGITTAL_INDEX,
    Subject,
    SubjectError,
    default_subject,
    full_pose,
    load_subject,
)
from calib.subject import SCHEMA_VERSION


@pytest.fixture(scope="module")
def subject() -> Subject:
    return default_subject()


@pytest.fixture()
def data(subject) -> dict:
    return copy.deepcopy(subject.to_dict())


def test_default_subject_is_every_leg_muscle_over_five_coordinates(subject):
    assert len(subject.muscles) == 43
    assert set(PAPER_MUSCLES) <= set(subject.muscle_names)
    assert subject.schema_version == SCHEMA_VERSION == 2
    assert subject.coordinates == COORDINATES
    assert [COORDINATES[i] for i in SAGITTAL_INDEX] == list(SAGITTAL_COORDINATES)
    assert subject.body.side == "right"
    # gait2392's femur: 9.3014 kg, mass centre 0.17 m below the hip centre, which lies
    # to the right of the pelvis origin (z > 0).
    assert subject.segments["thigh"].mass == pytest.approx(9.3014)
    assert subject.segments["thigh"].com == pytest.approx((0.0, -0.17, 0.0))
    assert subject.segments["foot"].mass == pytest.approx(0.1 + 1.25 + 0.2166)
    assert subject.hip_centre[2] > 0.05
    ranges = subject.coordinate_ranges
    assert ranges.shape == (5, 2) and np.all(ranges[:, 0] < ranges[:, 1])
    assert subject.muscle_arrays().path_exponents.shape[1] == 5


def test_round_trip_through_a_file(subject, tmp_path):
    path = tmp_path / "subject.json"
    subject.save(path)
    again = load_subject(path)
    assert again == subject
    q = np.array([[0.3, 0.1, -0.2, -1.0, 0.1], [-0.2, -0.1, 0.15, 0.0, -0.3]])
    np.testing.assert_array_equal(again.muscle_tendon_length(q), subject.muscle_tendon_length(q))
    np.testing.assert_array_equal(again.moment_arms(q), subject.moment_arms(q))
    assert json.loads(path.read_text()) == subject.to_dict()


def test_subject_is_immutable(subject):
    with pytest.raises(AttributeError):
        subject.body = None
    with pytest.raises(TypeError):
        subject.segments["thigh"] = None


def _set(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


_DELETE = object()
SKEW = [[0.1, 0.01, 0.0], [0.02, 0.1, 0.0], [0.0, 0.0, 0.1]]
NEGATIVE = [[0.1, 0.0, 0.0], [0.0, -0.01, 0.0], [0.0, 0.0, 0.1]]
# Principal moments 1, 0.1, 0.1: no body has a moment larger than the other two together.
NOT_A_TRIANGLE = [[1.0, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]]

BAD_FIELDS = [
    (("body", "mass"), _DELETE, "body.mass", "missing"),
    (("body", "mass"), "70", "body.mass", "positive number"),
    (("body", "mass"), -70.0, "body.mass", "positive number"),
    (("body", "height"), math.nan, "body.height", "finite"),
    (("body", "side"), "middle", "body.side", "right"),
    (("schema_version",), 99, "schema_version", "calib-subject"),
    (("schema_version",), _DELETE, "schema_version", "missing"),
    (("hip_centre",), [0.1, 0.0], "hip_centre", "3 finite numbers [x, y, z]"),
    (("segments", "shank"), _DELETE, "segments.shank", "missing"),
    (("segments", "foot", "com"), [0.1, 0.0, math.inf], "segments.foot.com[2]", "finite"),
    (("segments", "foot", "com"), [0.1, 0.0], "segments.foot.com", "3 finite numbers"),
    (("segments", "arm"), {}, "segments", "only"),
    (("segments", "thigh", "inertia"), 0.1, "segments.thigh.inertia", "3x3"),
    (("segments", "thigh", "inertia", 2), [0.0, 0.0], "segments.thigh.inertia[2]", "3 finite"),
    (("segments", "thigh", "inertia", 1, 1), math.nan, "inertia[1][1]", "finite"),
    (("segments", "shank", "inertia"), SKEW, "segments.shank.inertia", "symmetric"),
    (("segments", "foot", "inertia"), NEGATIVE, "segments.foot.inertia", "positive-definite"),
    (("segments", "thigh", "inertia"), NOT_A_TRIANGLE, "segments.thigh.inertia", "triangle"),
    (("joints", "knee", "ranges", 0), [0.2, -0.2], "joints.knee.ranges[0]", "lo < hi"),
    (("joints", "hip", "ranges", 2), [0.3, 0.3], "joints.hip.ranges[2]", "lo < hi"),
    (("joints", "hip", "ranges"), [[-1.0, 1.0]], "joints.hip.ranges", "list of 3 ranges"),
    (("joints", "ankle", "axes", 0), [0.0, 0.0, 2.0], "joints.ankle.axes[0]", "unit vector"),
    (("joints", "hip", "axes", 1), [1.0, 0.0], "joints.hip.axes[1]", "3 finite numbers"),
    (("joints", "hip", "axes"), [[0.0, 0.0, 1.0]], "joints.hip.axes", "list of 3 unit"),
    (
        ("joints", "hip", "coordinates"),
        ["hip_adduction", "hip_flexion", "hip_rotation"],
        "joints.hip.coordinates",
        "in this order",
    ),
    (("joints", "knee", "coordinate"), "knee_angle", "joints.knee.coordinate", "not a subject"),
    (("joints", "ankle"), _DELETE, "joints.ankle", "missing"),
    (("muscles",), [], "muscles", "non-empty"),
    (("muscles", 0, "max_isometric_force"), True, "max_isometric_force", "positive number"),
    (("muscles", 1, "pennation_at_optimal"), 2.0, "pennation_at_optimal", "pi/2"),
    (("muscles", 1, "strength_scale"), -1.0, "strength_scale", ">= 0"),
    (("muscles", 2, "name"), "glut_med1_r", "muscles[2].name", "not used by another"),
    (("muscles", 0, "path", "crosses"), ["hip_flexion", "elbow"], "path.crosses", "distinct"),
    (
        ("muscles", 0, "path", "crosses"),
        ["hip_rotation", "hip_flexion", "hip_adduction"],
        "path.crosses",
        "in that order",
    ),
    (("muscles", 0, "path", "exponents", 1), [0, 0, 0, 1, 0], "exponents[1]", "'knee_angle'"),
    (("muscles", 0, "path", "exponents", 1), [0, 1, 0], "exponents[1]", "five non-negative"),
    (("muscles", 0, "path", "exponents", 1), [0.5, 0, 0, 0, 0], "exponents[1]", "integers"),
    (("muscles", 0, "path", "exponents", 1), [0, 0, 0, 0, 0], "exponents[1]", "not repeated"),
    (("muscles", 0, "path", "coefficients"), [0.1], "path.coefficients", "one per exponent"),
    (("muscles", 3, "path", "coefficients", 0), math.nan, "coefficients[0]", "finite"),
    (("muscles", 4, "strenght_scale"), 0.5, "strenght_scale", "not a subject field"),
    (("body", "weight"), 70.0, "body.weight", "not a subject field"),
    (("hips",), [0.0, 0.0], "'hips'", "not a subject field"),
]


@pytest.mark.parametrize(("path", "value", "field", "expected"), BAD_FIELDS)
def test_bad_field_is_named(data, path, value, field, expected):
    _set(data, path, value)
    with pytest.raises(SubjectError) as info:
        Subject.from_dict(data)
    message = str(info.value)
    assert field in message
    assert expected in message


def test_the_bad_fields_start_from_a_valid_subject(data):
    assert data["muscles"][0]["path"]["crosses"] == ["hip_flexion", "hip_adduction", "hip_rotation"]
    assert data["muscles"][0]["path"]["exponents"][0] == [0, 0, 0, 0, 0]
    Subject.from_dict(data)


def test_a_thin_rod_meets_the_triangle_inequality_exactly(data):
    data["segments"]["thigh"]["inertia"] = [[0.2, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]]
    assert Subject.from_dict(data).segments["thigh"].inertia[0] == (0.2, 0.0, 0.0)


def test_bad_files_are_reported_with_their_path(tmp_path, data):
    with pytest.raises(SubjectError, match="cannot read"):
        load_subject(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SubjectError, match="not valid JSON"):
        load_subject(broken)
    data["body"]["mass"] = -1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(SubjectError, match=r"bad\.json: field 'body\.mass'"):
        load_subject(bad)


PLANAR_SUBJECT = {
    "schema_version": 1,
    "source": "generic gait2392, the planar format",
    "body": {"mass": 75.0, "height": 1.8, "side": "right"},
    "hip_centre": [-0.07, -0.066],
    "segments": {},
    "joints": {"hip": {"coordinate": "hip_flexion_r", "range": [-0.6, 1.1]}},
    "muscles": [],
}


def test_a_planar_subject_is_refused_with_the_command_that_rebuilds_it(tmp_path):
    old = tmp_path / "old_subject.json"
    old.write_text(json.dumps(PLANAR_SUBJECT))
    with pytest.raises(SubjectError) as info:
        load_subject(old)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{old}: ")
    assert "planar" in message and "schema_version 1" in message
    assert "calib-subject --osim MODEL.osim -o subject.json" in message
    assert "calib-subject --height H --mass M -o subject.json" in message


def test_programmatic_construction_is_validated_too(subject):
    with pytest.raises(SubjectError, match=r"body\.mass"):
        dataclasses.replace(subject, body=dataclasses.replace(subject.body, mass=-1.0))
    thigh = subject.segments["thigh"]
    skewed = dataclasses.replace(thigh, inertia=tuple(tuple(r) for r in SKEW))
    with pytest.raises(SubjectError, match=r"segments\.thigh\.inertia.*symmetric"):
        dataclasses.replace(subject, segments={**subject.segments, "thigh": skewed})


def test_poses_must_have_five_coordinates(subject):
    q_sagittal = np.array([[0.3, -0.9, 0.1], [0.0, -0.2, -0.1]])
    for bad in (q_sagittal, np.zeros(4), np.float64(0.2)):
        with pytest.raises(ValueError, match=r"\(\.\.\., 5\)") as info:
            subject.muscle_tendon_length(bad)
        assert "full_pose" in str(info.value)
        with pytest.raises(ValueError, match=r"\(\.\.\., 5\)"):
            subject.moment_arms(bad)
    q = full_pose(q_sagittal)
    assert q.shape == (2, 5)
    np.testing.assert_array_equal(q[:, SAGITTAL_INDEX], q_sagittal)
    np.testing.assert_array_equal(q[:, [1, 2]], 0.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        full_pose(q)
