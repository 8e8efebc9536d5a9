"""OpenSim storage and ExternalLoads readers: both layouts, the real files, and errors that
name the problem."""

from pathlib import Path

import numpy as np
import pytest

from train.opensim_io import (
    ExternalLoadsError,
    StorageError,
    is_rotational_column,
    read_external_loads,
    read_storage,
    write_storage,
)


@pytest.fixture
def sample():
    rng = np.random.default_rng(3)
    time = 0.5 + np.arange(25) / 60.0
    columns = ("pelvis_tx", "hip_flexion_r", "knee_angle_r", "ankle_angle_r")
    data = rng.normal(size=(25, 4)) * [0.1, 0.3, 0.5, 0.2]
    return time, columns, data


def test_current_layout_round_trip(tmp_path, sample):
    time, columns, data = sample
    path = write_storage(
        tmp_path / "walk.mot",
        time,
        columns,
        data,
        name="Coordinates",
        description="Units are S.I. units",
    )
    text = path.read_text().splitlines()
    assert text[:6] == ["Coordinates", "version=1", "nRows=25", "nColumns=5", "inDegrees=no", ""]
    storage = read_storage(path)
    assert storage.columns == columns
    assert not storage.in_degrees
    assert storage.name == "Coordinates"
    assert storage.header["description"] == "Units are S.I. units"
    np.testing.assert_allclose(storage.time, time, rtol=1e-14)
    np.testing.assert_allclose(storage.data, data, rtol=1e-14)
    np.testing.assert_allclose(storage.column_radians("knee_angle_r"), data[:, 2], rtol=1e-14)
    assert storage.rate_hz == pytest.approx(60.0)


def test_old_layout_with_spaces_reads_like_the_current_one(tmp_path, sample):
    time, columns, data = sample
    degrees = data.copy()
    degrees[:, 1:] = np.rad2deg(data[:, 1:])
    rows = "\n".join(
        "  ".join(f"{v:.15g}" for v in row) for row in np.column_stack([time, degrees])
    )
    old = (
        f"walk_old.mot\ndatacolumns {len(columns) + 1}\ndatarows {len(time)}\n"
        f"range {time[0]} {time[-1]}\nendheader\n"
        + "   ".join(("time", *columns))
        + "\n"
        + rows
        + "\n"
    )
    (tmp_path / "old.mot").write_text(old)
    storage = read_storage(tmp_path / "old.mot")
    assert storage.header["datarows"] == "25"
    assert storage.header["range"].split()[0] == str(time[0])
    assert storage.name == "walk_old.mot"
    # no inDegrees line: hip and knee beyond 180 deg cannot be radians
    assert storage.in_degrees
    np.testing.assert_allclose(storage.angles_radians(list(columns[1:])), data[:, 1:], rtol=1e-12)
    np.testing.assert_allclose(storage.column("pelvis_tx"), data[:, 0], rtol=1e-14)

    write_storage(
        tmp_path / "new.mot", storage.time, storage.columns, storage.data, in_degrees=True
    )
    again = read_storage(tmp_path / "new.mot")
    assert again.in_degrees
    np.testing.assert_allclose(again.data, storage.data, rtol=1e-14)


def test_rotational_columns_are_told_from_others():
    for name in (
        "pelvis_tilt",
        "hip_flexion_r",
        "knee_angle_l",
        "hip_adduction_r",
        "lumbar_extension",
        "pelvis_rotation",
        "subtalar_angle_r",
    ):
        assert is_rotational_column(name), name
    for name in (
        "pelvis_tx",
        "ground_force_vx",
        "glut_max1_r",
        "hip_flexion_r_reserve",
        "ground_torque_z",
        "FX",
        "MZ",
        "time",
    ):
        assert not is_rotational_column(name), name


def test_real_ik_and_grf_files(gait2392):
    ik = read_storage(gait2392 / "subject01_walk1_ik.mot")
    assert ik.in_degrees and ik.data.shape == (211, 23)
    assert ik.rate_hz == pytest.approx(60.0, rel=1e-6)
    assert ik.time[0] == pytest.approx(0.5) and ik.time[-1] == pytest.approx(4.0)
    knee = ik.column_radians("knee_angle_r")
    assert knee[0] == pytest.approx(np.deg2rad(-19.85408256))
    assert np.deg2rad(-80) < knee.min() < np.deg2rad(-50)
    with pytest.raises(StorageError, match=r"pelvis_tx.*not a rotational"):
        ik.column_radians("pelvis_tx")

    grf = read_storage(gait2392 / "subject01_walk1_grf.mot")
    assert grf.data.shape == (1501, 18) and grf.rate_hz == pytest.approx(600.0, rel=1e-6)
    assert grf.column("ground_force_vy").max() > 600.0


def test_rra_file_that_says_radians_over_degrees(gait2392):
    path = gait2392 / "subject01_walk1_RRA_Kinematics_q.sto"
    with pytest.raises(StorageError) as err:
        read_storage(path)
    message = str(err.value)
    assert "inDegrees=no" in message and "degrees" in message
    assert "angles_in_degrees=True" in message
    storage = read_storage(path, angles_in_degrees=True)
    assert storage.in_degrees
    assert storage.column_radians("knee_angle_r")[0] == pytest.approx(np.deg2rad(-17.99348041))
    ik = read_storage(gait2392 / "subject01_walk1_ik.mot")
    # RRA adjusts IK only slightly: both agree within a few degrees at 0.5 s
    assert (
        abs(storage.column_radians("hip_flexion_r")[0] - ik.column_radians("hip_flexion_r")[0])
        < 0.05
    )


def test_static_optimisation_files_read_as_radians(gait2392):
    activation = read_storage(gait2392 / "so/subject01_walk1_ik_StaticOptimization_activation.sto")
    assert activation.data.shape[0] == 121 and not activation.in_degrees
    assert activation.header["description"].startswith("This file contains static optimization")
    assert 0.0 < activation.column("rect_fem_r").max() <= 1.0


def test_missing_column_names_the_missing_and_the_available(tmp_path, sample):
    time, columns, data = sample
    storage = read_storage(write_storage(tmp_path / "a.mot", time, columns, data))
    with pytest.raises(StorageError) as err:
        storage.columns_of(["knee_angle_r", "hip_flexion_l", "ankle_angle_l"])
    message = str(err.value)
    assert "'hip_flexion_l'" in message and "'ankle_angle_l'" in message
    assert "hip_flexion_r, knee_angle_r" in message
    assert "'knee_angle_r'" not in message.split("the file has")[0]


def _write_raw(tmp_path, rows: list[str], labels="time\tknee_angle_r\tpelvis_tx") -> Path:
    path = tmp_path / "raw.mot"
    path.write_text(
        "raw\nversion=1\ninDegrees=yes\nendheader\n" + labels + "\n" + "\n".join(rows) + "\n"
    )
    return path


def test_nan_names_column_and_row(tmp_path):
    path = _write_raw(tmp_path, ["0.0\t1.0\t0.5", "0.01\t2.0\t0.5", "0.02\t3.0\tNaN"])
    with pytest.raises(StorageError, match=r"'pelvis_tx' is NaN/inf at data row 2 \(t = 0.02 s\)"):
        read_storage(path)


def test_non_monotonic_time_names_the_row(tmp_path):
    path = _write_raw(tmp_path, ["0.0\t1\t0", "0.01\t1\t0", "0.02\t1\t0", "0.015\t1\t0"])
    with pytest.raises(
        StorageError, match=r"time does not increase at data row 3 \(t = 0.02 s then 0.015 s\)"
    ):
        read_storage(path)
    repeated = _write_raw(tmp_path, ["0.0\t1\t0", "0.0\t1\t0"])
    with pytest.raises(StorageError, match="data row 1"):
        read_storage(repeated)


def test_bad_files_say_what_is_wrong(tmp_path):
    empty = tmp_path / "empty.sto"
    empty.write_text("\n\n")
    with pytest.raises(StorageError, match="is empty"):
        read_storage(empty)
    with pytest.raises(StorageError, match="no data rows"):
        read_storage(_write_raw(tmp_path, []))
    with pytest.raises(StorageError, match=r"line 7 has 2 values.*3 columns"):
        read_storage(_write_raw(tmp_path, ["0\t1\t2", "0.1\t1"]))
    with pytest.raises(StorageError, match="line 6, column 'knee_angle_r': 'abc' is not a number"):
        read_storage(_write_raw(tmp_path, ["0\tabc\t2"]))
    with pytest.raises(StorageError, match="first column label is 'frame'"):
        read_storage(_write_raw(tmp_path, ["0\t1\t2"], labels="frame\ta\tb"))
    no_header = tmp_path / "plain.txt"
    no_header.write_text("time\ta\n0\t1\n")
    with pytest.raises(StorageError, match="no 'endheader'"):
        read_storage(no_header)
    truncated = tmp_path / "truncated.mot"
    truncated.write_text("t\nversion=1\nnRows=3\ninDegrees=no\nendheader\ntime\tx\n0\t1\n0.1\t2\n")
    with pytest.raises(StorageError, match="nRows=3 but the file has 2 data rows"):
        read_storage(truncated)
    with pytest.raises(StorageError, match="cannot read"):
        read_storage(tmp_path / "missing.mot")


def test_write_refuses_mismatched_shapes_and_nan(tmp_path):
    with pytest.raises(StorageError, match=r"shape \(3, 1\), expected \(3, 2\)"):
        write_storage(tmp_path / "x.sto", [0, 1, 2], ["a", "b"], np.zeros((3, 1)))
    with pytest.raises(StorageError, match="'b' is NaN"):
        write_storage(tmp_path / "x.sto", [0, 1], ["a", "b"], [[0, 0], [0, np.nan]])


def test_external_loads_3x_layout_of_the_real_trial(gait2392):
    specs = read_external_loads(gait2392 / "subject01_walk1_grf.xml")
    assert [s.applied_to_body for s in specs] == ["calcn_r", "calcn_l"]
    assert [s.side for s in specs] == ["r", "l"]
    right, left = specs
    assert right.force_columns == ("ground_force_vx", "ground_force_vy", "ground_force_vz")
    assert right.point_columns == ("ground_force_px", "ground_force_py", "ground_force_pz")
    assert right.torque_columns == ("ground_torque_x", "ground_torque_y", "ground_torque_z")
    assert left.force_identifier == "1_ground_force_v"
    assert right.force_expressed_in_body == "ground" and right.point_expressed_in_body == "ground"
    assert all(s.enabled for s in specs)
    assert Path(right.datafile) == gait2392 / "subject01_walk1_grf.mot"
    grf = read_storage(right.datafile)
    for spec in specs:
        grf.columns_of(list(spec.force_columns + spec.point_columns + spec.torque_columns))


OPENSIM_4_LOADS = """<?xml version="1.0" encoding="UTF-8" ?>
<OpenSimDocument Version="40500">
  <ExternalLoads name="externalloads">
    <objects>
      <ExternalForce name="left_plate">
        <appliesForce>true</appliesForce>
        <applied_to_body>toes_l</applied_to_body>
        <force_expressed_in_body>ground</force_expressed_in_body>
        <point_expressed_in_body>ground</point_expressed_in_body>
        <force_identifier>ground_force_2_v</force_identifier>
        <point_identifier>ground_force_2_p</point_identifier>
        <torque_identifier>ground_moment_2_m</torque_identifier>
        <data_source_name>plates.mot</data_source_name>
      </ExternalForce>
      <ExternalForce name="right_plate">
        <appliesForce>false</appliesForce>
        <applied_to_body>calcn_r</applied_to_body>
        <force_expressed_in_body>calcn_r</force_expressed_in_body>
        <force_identifier>ground_force_1_v</force_identifier>
        <point_identifier>ground_force_1_p</point_identifier>
      </ExternalForce>
    </objects>
    <groups />
    <datafile>walk_grf.mot</datafile>
  </ExternalLoads>
</OpenSimDocument>
"""


def test_external_loads_4x_layout(tmp_path):
    path = tmp_path / "loads.xml"
    path.write_text(OPENSIM_4_LOADS)
    left, right = read_external_loads(path)
    assert (left.name, left.side, left.enabled) == ("left_plate", "l", True)
    assert left.torque_columns == ("ground_moment_2_mx", "ground_moment_2_my", "ground_moment_2_mz")
    assert Path(left.datafile) == tmp_path / "plates.mot"
    assert (right.side, right.enabled, right.torque_columns) == ("r", False, ())
    assert right.force_expressed_in_body == "calcn_r"
    assert right.point_expressed_in_body == "ground"
    assert Path(right.datafile) == tmp_path / "walk_grf.mot"


def test_external_loads_2_0_prescribed_force_layout(tmp_path):
    functions = "".join(f'<NaturalCubicSpline name="{n}" />' for n in ("Fx", "Fy", "Fz"))
    points = "".join(f'<NaturalCubicSpline name="{n}" />' for n in ("Px", "Py", "Pz"))
    path = tmp_path / "old.xml"
    path.write_text(
        '<OpenSimDocument Version="20201"><ExternalLoads name=""><objects>'
        '<PrescribedForce name="RightForce"><body>calcn_r</body><pointIsGlobal>true</pointIsGlobal>'
        "<forceIsGlobal>true</forceIsGlobal>"
        f'<FunctionSet name="forceFunctions"><objects>{functions}</objects></FunctionSet>'
        f'<FunctionSet name="pointFunctions"><objects>{points}</objects></FunctionSet>'
        "</PrescribedForce></objects></ExternalLoads></OpenSimDocument>"
    )
    (spec,) = read_external_loads(path)
    assert spec.side == "r" and spec.force_columns == ("Fx", "Fy", "Fz")
    assert spec.point_columns == ("Px", "Py", "Pz") and spec.torque_columns == ()
    assert spec.point_expressed_in_body == "ground"


def test_external_loads_errors(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<ExternalLoads><objects>")
    with pytest.raises(ExternalLoadsError, match="not well-formed"):
        read_external_loads(bad)
    other = tmp_path / "other.xml"
    other.write_text("<OpenSimDocument><Model/></OpenSimDocument>")
    with pytest.raises(ExternalLoadsError, match="no <ExternalLoads>"):
        read_external_loads(other)
    empty = tmp_path / "empty.xml"
    empty.write_text("<OpenSimDocument><ExternalLoads><objects/></ExternalLoads></OpenSimDocument>")
    with pytest.raises(ExternalLoadsError, match="holds no ExternalForce"):
        read_external_loads(empty)
