"""sensors.json and zeroing from a standing capture."""

import json

import numpy as np
import pytest

from calib import COORDINATES, SAGITTAL_COORDINATES, SensorError, SensorMap, load_sensors
from calib.sensors import Channel
from calib.zeroing import read_capture, zero_sensors


def _write_capture(path, columns, samples, time=True):
    header = (["time"] if time else []) + list(columns)
    lines = [",".join(header)]
    for i, row in enumerate(samples):
        lines.append(
            ",".join(([f"{i * 0.01:.2f}"] if time else []) + [repr(float(v)) for v in row])
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_identity_passes_radians_through():
    q = np.array([[0.1, -0.5, 0.2], [0.0, 0.0, 0.0]])
    three = SensorMap.identity()
    assert three.coordinates == SAGITTAL_COORDINATES == ("hip_flexion", "knee_angle", "ankle_angle")
    assert [c.coordinate for c in SensorMap.identity(3).channels] == list(SAGITTAL_COORDINATES)
    np.testing.assert_array_equal(three.to_radians(q), q)
    four = SensorMap.identity(4)
    np.testing.assert_array_equal(
        four.to_radians(np.array([0.1, -0.5, 0.2, 99.0])), [0.1, -0.5, 0.2]
    )
    with pytest.raises(SensorError, match=r"shape \(\.\.\., 4\)"):
        four.to_radians(q)
    with pytest.raises(SensorError, match="at least 5"):
        SensorMap.identity(3, COORDINATES)


def test_an_imu_suit_sends_all_five_coordinates_in_any_channel_order():
    five = SensorMap.identity(5, COORDINATES)
    assert five.coordinates == COORDINATES
    q = np.array([0.3, -0.1, 0.05, -0.8, 0.1])
    np.testing.assert_array_equal(five.to_radians(q), q)
    # Channels in the suit's own order, one unused: columns come out in COORDINATES order.
    suit = SensorMap(
        (
            Channel("knee", "knee_angle"),
            Channel("rot", "hip_rotation", sign=-1.0),
            Channel("battery", None),
            Channel("flex", "hip_flexion"),
            Channel("ankle", "ankle_angle"),
            Channel("add", "hip_adduction", zero_offset=0.02),
        )
    )
    assert suit.coordinates == COORDINATES
    raw = np.array([[-0.8, -0.05, 3.7, 0.3, 0.1, -0.08]])
    np.testing.assert_allclose(suit.to_radians(raw), [[0.3, -0.1, 0.05, -0.8, 0.1]], atol=1e-15)
    hip_adduction_only = SensorMap(
        (*SensorMap.identity().channels, Channel("add", "hip_adduction"))
    )
    assert hip_adduction_only.coordinates == (
        "hip_flexion",
        "hip_adduction",
        "knee_angle",
        "ankle_angle",
    )
    np.testing.assert_array_equal(
        hip_adduction_only.to_radians([0.1, -0.5, 0.2, 0.07]), [0.1, 0.07, -0.5, 0.2]
    )


def test_a_version_1_file_naming_joints_is_read_as_the_sagittal_coordinates(tmp_path):
    path = tmp_path / "old_sensors.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "channels": [
                    {"name": "a", "joint": "ankle", "sign": -1.0, "zero_offset": 3.0, "scale": 0.5},
                    {"name": "h", "joint": "hip", "sign": 1.0, "zero_offset": 0.0, "scale": 1.0},
                    {"name": "spare", "joint": None},
                    {"name": "k", "joint": "knee"},
                ],
            }
        )
    )
    sensors = load_sensors(path)
    assert [(c.name, c.coordinate) for c in sensors.channels] == [
        ("a", "ankle_angle"), ("h", "hip_flexion"), ("spare", None), ("k", "knee_angle"),
    ]  # fmt: skip
    np.testing.assert_allclose(sensors.to_radians([5.0, 0.2, 9.0, -0.4]), [0.2, -0.4, -1.0])
    sensors.save(path)
    assert json.loads(path.read_text())["schema_version"] == 2
    assert load_sensors(path) == sensors
    bad = tmp_path / "bad_old.json"
    bad.write_text(json.dumps({"schema_version": 1, "channels": [{"name": "x", "joint": "elbow"}]}))
    with pytest.raises(SensorError, match=r"channels\[0\]\.joint.*elbow"):
        load_sensors(bad)


def test_sign_scale_offset_and_channel_order(tmp_path):
    counts_per_rad = 4096 / (2 * np.pi)
    sensors = SensorMap(
        (
            Channel(
                "enc_knee", "knee_angle", sign=-1.0, zero_offset=1000.0, scale=1 / counts_per_rad
            ),
            Channel("spare", None),
            Channel("enc_hip", "hip_flexion", zero_offset=2048.0, scale=1 / counts_per_rad),
            Channel(
                "enc_ankle", "ankle_angle", sign=-1.0, zero_offset=10.0, scale=1 / counts_per_rad
            ),
        )
    )
    raw = np.array([1000.0 + counts_per_rad * 0.5, 7.0, 2048.0 + counts_per_rad * 0.25, 10.0])
    np.testing.assert_allclose(sensors.to_radians(raw), [0.25, -0.5, 0.0], atol=1e-12)
    path = tmp_path / "sensors.json"
    sensors.save(path)
    assert load_sensors(path) == sensors


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(schema_version=3), "schema_version"),
        (lambda d: d["channels"][0].update(coordinate="elbow"), "channels[0].coordinate"),
        (lambda d: d["channels"][0].update(coordinate="hip"), "channels[0].coordinate"),
        (lambda d: d["channels"][1].update(sign=0.5), "channels[1].sign"),
        (lambda d: d["channels"][2].update(scale=0.0), "channels[2].scale"),
        (lambda d: d["channels"][2].update(zero_offset="x"), "channels[2].zero_offset"),
        (lambda d: d["channels"][2].update(coordinate="hip_flexion"), "exactly one channel"),
        (lambda d: d["channels"][2].update(coordinate=None), "exactly one channel"),
        (
            lambda d: d["channels"].append({"name": "rot2", "coordinate": "hip_rotation"}),
            "hip_rotation by at most one",
        ),
        (lambda d: d["channels"][1].update(name="ch0"), "channels[1].name"),
        (lambda d: d["channels"][0].update(offset=3.0), "channels[0].offset"),
        (lambda d: d["channels"][0].update(joint="hip"), "channels[0].joint"),
    ],
)
def test_bad_sensors_file_is_refused(tmp_path, edit, message):
    data = SensorMap((*SensorMap.identity().channels, Channel("rot", "hip_rotation"))).to_dict()
    edit(data)
    path = tmp_path / "sensors.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SensorError) as info:
        load_sensors(path)
    assert message in str(info.value)


def test_still_capture_sets_zero_offsets(tmp_path):
    rng = np.random.default_rng(0)
    standing = np.array([0.05, -0.08, 0.03])
    samples = standing + rng.normal(0.0, 0.001, (300, 3))
    capture = read_capture(_write_capture(tmp_path / "still.csv", ["h", "k", "a"], samples))
    sensors = zero_sensors(capture)
    assert [c.coordinate for c in sensors.channels] == list(SAGITTAL_COORDINATES)
    np.testing.assert_allclose([c.zero_offset for c in sensors.channels], samples.mean(axis=0))
    np.testing.assert_allclose(sensors.to_radians(standing), 0.0, atol=5e-4)


def test_template_keeps_sign_and_scale_in_counts(tmp_path):
    template = SensorMap(
        (
            Channel("a0", "ankle_angle", sign=-1.0, scale=0.001),
            Channel("a1", "knee_angle", scale=0.001),
            Channel("a2", "hip_flexion", scale=0.001),
        )
    )
    rng = np.random.default_rng(1)
    samples = np.array([500.0, -300.0, 120.0]) + rng.normal(0.0, 2.0, (100, 3))
    capture = read_capture(
        _write_capture(tmp_path / "c.csv", ["a2", "a1", "a0"], samples[:, ::-1], time=False)
    )
    sensors = zero_sensors(capture, template)
    assert [(c.name, c.coordinate, c.sign, c.scale) for c in sensors.channels] == [
        (c.name, c.coordinate, c.sign, c.scale) for c in template.channels
    ]
    np.testing.assert_allclose([c.zero_offset for c in sensors.channels], samples.mean(axis=0))


def test_a_capture_in_degrees_is_refused_and_accepted_with_its_scale(tmp_path):
    """Standing at hip 3, knee 5, ankle -2 degrees, recorded in degrees: 5 would become a
    5 rad offset; with the channels' scale pi/180 in a template the same file zeroes."""
    rng = np.random.default_rng(2)
    samples = np.array([3.0, 5.0, -2.0]) + rng.normal(0.0, 0.001, (200, 3))
    path = _write_capture(tmp_path / "deg.csv", ["h", "k", "a"], samples)
    with pytest.raises(SensorError) as info:
        zero_sensors(read_capture(path))
    message = str(info.value)
    assert "looks like degrees" in message and "channel h (hip_flexion) reads 3" in message
    assert "0.0174533" in message
    template = SensorMap(
        tuple(Channel(n, c, scale=np.pi / 180) for n, c in zip("hka", SAGITTAL_COORDINATES))
    )
    sensors = zero_sensors(read_capture(path), template)
    np.testing.assert_allclose([c.zero_offset for c in sensors.channels], samples.mean(axis=0))
    # with a template any mounting offset within a turn passes, none beyond it
    beyond = _write_capture(tmp_path / "turn.csv", ["h", "k", "a"], samples * 2.5)
    with pytest.raises(SensorError, match="looks like degrees"):
        zero_sensors(read_capture(beyond), SensorMap(tuple(
            Channel(n, c) for n, c in zip("hka", SAGITTAL_COORDINATES)
        )))  # fmt: skip


def test_moving_capture_is_refused_saying_by_how_much(tmp_path):
    t = np.arange(200) * 0.01
    samples = np.stack(
        [0.02 + 0.2 * np.sin(2 * np.pi * t), np.full_like(t, -0.1), np.zeros_like(t)], axis=1
    )
    capture = read_capture(_write_capture(tmp_path / "walk.csv", ["hip", "knee", "ankle"], samples))
    with pytest.raises(SensorError) as info:
        zero_sensors(capture)
    message = str(info.value)
    assert "hip_flexion" in message and "knee" not in message
    expected_std = np.degrees(np.std(samples[:, 0]))
    assert f"std {expected_std:.2f} deg" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("time\n0\n", "no channel columns"),
        ("h,k,a\n1,2\n", "line 2"),
        ("h,k,a\n1,x,3\n", "'k'"),
        ("h,k,a\n1,nan,3\n", "NaN"),
    ],
)
def test_bad_captures_are_refused(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(SensorError, match=message):
        read_capture(path)


def test_five_columns_are_the_five_coordinates(tmp_path):
    rng = np.random.default_rng(2)
    samples = np.array([0.05, 0.02, -0.03, -0.08, 0.03]) + rng.normal(0.0, 0.001, (200, 5))
    capture = read_capture(_write_capture(tmp_path / "imu.csv", list("abcde"), samples))
    sensors = zero_sensors(capture)
    assert sensors.coordinates == COORDINATES
    np.testing.assert_allclose(sensors.to_radians(samples.mean(axis=0)), 0.0, atol=1e-12)


def test_capture_shape_mismatch(tmp_path):
    samples = np.zeros((20, 2))
    capture = read_capture(_write_capture(tmp_path / "two.csv", ["h", "k"], samples))
    with pytest.raises(SensorError, match="exactly 3"):
        zero_sensors(capture)
    with pytest.raises(SensorError, match="at least"):
        zero_sensors(
            read_capture(_write_capture(tmp_path / "short.csv", ["h", "k", "a"], np.zeros((3, 3))))
        )
