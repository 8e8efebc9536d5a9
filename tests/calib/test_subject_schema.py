"""subject.json: round trips, and every kind of bad field is refused with its name."""

import copy
import json
import math

import numpy as np
import pytest

from calib import Subject, SubjectError, default_subject, load_subject
from calib.subject import SCHEMA_VERSION


@pytest.fixture(scope="module")
def subject() -> Subject:
    return default_subject()


@pytest.fixture()
def data(subject) -> dict:
    return copy.deepcopy(subject.to_dict())


def test_default_subject_is_the_papers_ten_muscles(subject):
    assert subject.muscle_names == (
        "psoas_r", "rect_fem_r", "bifemlh_r", "semimem_r", "iliacus_r",
        "vas_int_r", "vas_lat_r", "vas_med_r", "lat_gas_r", "med_gas_r",
    )  # fmt: skip
    assert subject.schema_version == SCHEMA_VERSION
    assert subject.coordinates == ("hip_flexion_r", "knee_angle_r", "ankle_angle_r")
    assert subject.body.side == "right"
    # gait2392's femur: 9.3014 kg, mass centre 0.17 m below the hip centre.
    assert subject.segments["thigh"].mass == pytest.approx(9.3014)
    assert subject.segments["thigh"].com[1] == pytest.approx(-0.17)
    assert subject.segments["foot"].mass == pytest.approx(0.1 + 1.25 + 0.2166)


def test_round_trip_through_a_file(subject, tmp_path):
    path = tmp_path / "subject.json"
    subject.save(path)
    again = load_subject(path)
    assert again == subject
    q = np.array([[0.3, -1.0, 0.1], [-0.2, 0.0, -0.3]])
    np.testing.assert_array_equal(again.muscle_tendon_length(q), subject.muscle_tendon_length(q))
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

BAD_FIELDS = [
    (("body", "mass"), _DELETE, "body.mass", "missing"),
    (("body", "mass"), "70", "body.mass", "positive number"),
    (("body", "mass"), -70.0, "body.mass", "positive number"),
    (("body", "height"), math.nan, "body.height", "finite"),
    (("body", "side"), "middle", "body.side", "right"),
    (("schema_version",), 99, "schema_version", "calib-subject"),
    (("schema_version",), _DELETE, "schema_version", "missing"),
    (("hip_centre",), [0.1], "hip_centre", "two finite numbers"),
    (("segments", "shank"), _DELETE, "segments.shank", "missing"),
    (("segments", "thigh", "inertia"), 0.0, "segments.thigh.inertia", "positive"),
    (("segments", "foot", "com"), [0.1, math.inf], "segments.foot.com[1]", "finite"),
    (("segments", "arm"), {}, "segments", "only"),
    (("joints", "knee", "range"), [0.2, -0.2], "joints.knee.range", "lo < hi"),
    (("joints", "ankle", "coordinate"), 3, "joints.ankle.coordinate", "string"),
    (("muscles",), [], "muscles", "non-empty"),
    (("muscles", 0, "max_isometric_force"), True, "max_isometric_force", "positive number"),
    (("muscles", 1, "pennation_at_optimal"), 2.0, "pennation_at_optimal", "pi/2"),
    (("muscles", 1, "strength_scale"), -1.0, "strength_scale", ">= 0"),
    (("muscles", 2, "name"), "psoas_r", "muscles[2].name", "not used by another"),
    (("muscles", 0, "path", "crosses"), ["hip", "elbow"], "path.crosses", "distinct joints"),
    (("muscles", 0, "path", "exponents", 1), [0, 1, 0], "exponents[1]", "does not cross"),
    (("muscles", 0, "path", "exponents", 1), [0.5, 0, 0], "exponents[1]", "non-negative integers"),
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


def test_programmatic_construction_is_validated_too(subject):
    import dataclasses

    with pytest.raises(SubjectError, match=r"body\.mass"):
        dataclasses.replace(subject, body=dataclasses.replace(subject.body, mass=-1.0))
