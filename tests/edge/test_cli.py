"""edge-run as a user runs it: bad input is one line (exit 2), a failure of the program exit 1,
SIGINT flushes, --simulate answers."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers.runtime_device import PtyDevice, gait_angles, runtime_bundle

from calib.sensors import SensorMap
from edge.cli import main


@pytest.fixture(scope="module")
def bundle_dir():
    return str(runtime_bundle().directory)


def _one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("edge-run: error: "), err
    return err[0]


def test_help_explains_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--port",
        "--wait",
        "--simulate",
        "--rate",
        "--replay",
        "--fast",
        "--bundle",
        "--sensors",
        "--backend",
        "--inference",
        "--inference-worker",
        "--max-activation-age",
        "--out-port",
        "--inference-rate",
        "--report-muscles",
        "--baud",
        "--range-margin",
        "--log",
        "--duration",
        "--json-status",
        "--view",
        "--rt-priority",
        "--cpu",
    ):
        assert option in text


@pytest.fixture
def port():
    """A serial port that exists (a pty, through a symlink as /dev/serial/by-id is)."""
    device = PtyDevice(*gait_angles(10, 100.0), 100.0)
    yield device.path
    device.close()


def test_bad_input_is_one_clear_line(capsys, tmp_path, bundle_dir, port):
    assert "--port" in _one_line_error(capsys, [])
    assert "bundle" in _one_line_error(capsys, ["--port", port, "--bundle", str(tmp_path / "no")])
    bad = tmp_path / "sensors.json"
    bad.write_text("{not json")
    assert "sensors" in _one_line_error(
        capsys, ["--port", port, "--bundle", bundle_dir, "--sensors", str(bad)]
    )
    assert "--cpu" in _one_line_error(
        capsys, ["--port", port, "--bundle", bundle_dir, "--cpu", "4096"]
    )
    assert "--rt-priority" in _one_line_error(
        capsys, ["--port", port, "--bundle", bundle_dir, "--rt-priority", "1000"]
    )
    assert "--duration" in _one_line_error(capsys, ["--port", port, "--duration", "-1"])
    assert "cannot open serial link" in _one_line_error(
        capsys, ["--port", "nosuch://x", "--bundle", bundle_dir]
    )
    with pytest.raises(SystemExit) as exit_info:  # argparse's own usage error
        main(["--port", port, "--bundle", bundle_dir, "--backend", "nope"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "edge-run: error: argument --backend: invalid choice: 'nope' "
        "(choose from 'auto', 'tensorrt', 'onnxruntime', 'torch')"
    )
    assert "--max-activation-age" in _one_line_error(
        capsys, ["--simulate", "--max-activation-age", "0"]
    )


def test_the_backend_choices_are_the_backends_that_exist(capsys):
    from edge.backends import BackendError, create_backend
    from edge.bundle import DEFAULT_BUNDLE_DIR, load_bundle
    from edge.cli import BACKENDS

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "{" + ",".join(BACKENDS) + "}" in capsys.readouterr().out
    bundle = load_bundle(DEFAULT_BUNDLE_DIR)
    for name in BACKENDS[1:]:  # every choice but "auto" names a backend create_backend builds
        try:
            create_backend(bundle, name)
        except BackendError as exc:
            assert "unknown backend" not in str(exc)
    with pytest.raises(BackendError, match="unknown backend"):
        create_backend(bundle, "no-such-backend")


def test_a_log_that_cannot_be_opened_is_bad_input(capsys, tmp_path, bundle_dir, monkeypatch):
    trial = tmp_path / "walk.mot"
    _write_trial(trial, n=50)
    log = tmp_path / "run.sto"
    log.symlink_to(tmp_path / "gone" / "run.sto")
    argv = ["--replay", str(trial), "--bundle", bundle_dir, "--fast", "--log", str(log)]
    line = _one_line_error(capsys, argv)  # checked before the model loads
    assert line == (
        f"edge-run: error: --log {log}: the folder {tmp_path / 'gone'} does not exist; "
        f"create it first (mkdir -p {tmp_path / 'gone'})"
    )
    import edge.cli

    monkeypatch.setattr(edge.cli, "_check_log_path", lambda path: None)  # found at opening
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"edge-run: error: cannot write the estimate log {log}: No such file or directory"
    )
    assert not any("Traceback" in line for line in err)


def test_an_os_error_that_is_not_the_users_input_is_a_failure(
    capsys, tmp_path, bundle_dir, monkeypatch
):
    from edge.hill import HillModel

    def failing_device(self):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(HillModel, "warmup", failing_device)
    trial = tmp_path / "walk.mot"
    _write_trial(trial, n=50)
    argv = ["--replay", str(trial), "--bundle", bundle_dir, "--fast"]
    assert main(argv) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "edge-run: internal error: OSError: [Errno 5] Input/output error "
        "(--debug prints the traceback)"
    )


def test_options_that_do_not_go_together_are_refused(capsys, tmp_path, port):
    assert "give only one" in _one_line_error(capsys, ["--port", port, "--simulate"])
    assert "--rate applies only with --simulate" in _one_line_error(
        capsys, ["--port", port, "--rate", "1000"]
    )
    assert "--wait applies only with --port" in _one_line_error(capsys, ["--simulate", "--wait"])
    assert "--fast applies only with --replay" in _one_line_error(capsys, ["--simulate", "--fast"])
    assert "--sensors and --out-port do not apply" in _one_line_error(
        capsys, ["--replay", str(tmp_path / "t.mot"), "--out-port", port]
    )


def test_a_port_that_is_not_a_serial_device_says_what_it_is(capsys, tmp_path):
    regular = tmp_path / "samples.bin"
    regular.write_bytes(b"MJ")
    assert _one_line_error(capsys, ["--port", str(regular)]).endswith(
        "is a regular file, not a serial port"
    )
    assert _one_line_error(capsys, ["--port", str(tmp_path)]).endswith(
        "is a directory, not a serial port"
    )
    assert "/dev/null is a character device that is not a terminal" in _one_line_error(
        capsys, ["--port", "/dev/null"]
    )


@pytest.mark.slow
def test_a_missing_port_is_refused_naming_the_ports_here_unless_waited_for(capsys, tmp_path):
    from firmware_bridge.link import serial_ports

    missing = str(tmp_path / "ttyUSB7")
    line = _one_line_error(capsys, ["--port", missing])
    assert f"{missing} does not exist" in line and "--wait" in line
    assert f"serial ports here: {', '.join(serial_ports()) or 'none found'}" in line
    proc = _edge_run("--port", missing, "--wait", "--duration", "60")
    try:
        lines = _stderr_through(proc, "waiting")
    finally:
        proc.kill()
        proc.communicate()
    assert lines[-1].startswith(f"waiting for {missing} to appear (serial ports here:"), lines


def test_the_log_folder_is_checked_before_the_model_loads(capsys, tmp_path):
    line = _one_line_error(
        capsys,
        [
            "--simulate",
            "--bundle",
            str(tmp_path / "no bundle"),
            "--log",
            str(tmp_path / "no" / "run.sto"),
        ],
    )
    assert "folder" in line and "does not exist" in line and "mkdir -p" in line
    assert "is a folder" in _one_line_error(capsys, ["--simulate", "--log", str(tmp_path)])


def test_a_manifest_window_that_the_model_does_not_take_is_refused_at_load(
    capsys, tmp_path, bundle_dir, port
):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["window"] += 5
    (copy / "manifest.json").write_text(json.dumps(manifest))
    for backend in ("onnxruntime", "torch"):
        line = _one_line_error(
            capsys, ["--port", port, "--bundle", str(copy), "--backend", backend]
        )
        assert f"window {manifest['window']}" in line and "re-export" in line, line


def _edge_run(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _stderr_through(proc, prefix):
    """edge-run's stderr lines up to and including the first that starts with ``prefix`` (all
    of them where none does)."""
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(prefix):
            break
    return lines


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _first_answer_times(proc, records):
    """Reads edge-run's JSON status lines into ``records``; yields after each one the
    time.monotonic() at which the first record counting an estimate arrived (None before)."""
    answered_at = None
    for line in proc.stdout:
        record = json.loads(line)
        records.append(record)
        if answered_at is None and record.get("estimates_out", 0) > 0:
            answered_at = time.monotonic()
        yield answered_at


@pytest.mark.slow
def test_sigint_flushes_the_log_and_prints_the_summary(tmp_path, bundle_dir):
    rate = 200.0
    ts, q = gait_angles(4000, rate)
    device = PtyDevice(ts, q, rate)
    log = tmp_path / "run.csv"
    proc = _edge_run(
        "--port", device.path, "--bundle", bundle_dir, "--log", str(log), "--json-status"
    )
    try:
        startup = _stderr_through(proc, "ready in")
        device.start()
        deadline = time.monotonic() + 60
        while len(device.estimates) < 300 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(device.estimates) >= 300, "edge-run did not answer"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = _json_lines(out)
    summary = lines[-1]
    assert summary["type"] == "summary"
    assert all(line["type"] == "status" for line in lines[:-1])
    assert summary["samples_in"] == summary["estimates_out"] + summary["skipped"] > 300
    assert set(summary["latency_us"]) == {"p50", "p99", "p999"}
    rows = np.loadtxt(log, delimiter=",", skiprows=1, ndmin=2)
    assert len(rows) == summary["estimates_out"]
    text = "".join(startup)
    assert "backend" in text and "lookahead" in text and "muscles" in text


@pytest.mark.slow
def test_simulate_answers_within_30_s(bundle_dir):
    start = time.monotonic()
    proc = _edge_run("--simulate", "--bundle", bundle_dir, "--duration", "4", "--json-status")
    lines = []
    try:
        answered = list(_first_answer_times(proc, lines))
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    first_answer_s = answered[-1] - start if answered and answered[-1] is not None else None
    assert first_answer_s is not None and first_answer_s < 30.0, (first_answer_s, err)
    summary = lines[-1]
    assert summary["type"] == "summary"
    assert summary["samples_in"] == summary["estimates_out"] + summary["skipped"] > 100
    assert summary["simulator"]["answered"] > 100
    assert "simulator at 200 Hz" in err


@pytest.mark.slow
def test_simulate_without_duration_runs_until_sigint_and_answers_every_sample(bundle_dir):
    """No preset end: after Ctrl-C the simulator ends its stream and every sample is answered."""
    proc = _edge_run("--simulate", "--bundle", bundle_dir, "--json-status")
    lines = []
    try:
        for answered_at in _first_answer_times(proc, lines):
            if answered_at is not None and time.monotonic() - answered_at > 2.0:
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines.extend(_json_lines(out))
    assert proc.returncode == 0, err
    summary = lines[-1]
    assert summary["type"] == "summary", lines[-3:]
    assert summary["samples_in"] == summary["estimates_out"] + summary["skipped"] > 200
    assert summary["device"]["silences"] == 0 and summary["ended"] == "stream ended"
    device = summary["simulator"]
    assert device["samples_sent"] == summary["samples_in"] and device["lost"] == 0, device


def _write_trial(path, n=300, rate=100.0):
    """An OpenSim motion file (degrees) of the test gait with the subject's coordinates."""
    ts, q = gait_angles(n, rate)
    t = (ts - ts[0]) * 1e-6
    rows = "\n".join(
        f"{ti:.4f}\t" + "\t".join(f"{np.degrees(v):.6f}" for v in qi) for ti, qi in zip(t, q)
    )
    path.write_text(
        f"walk\nversion=1\nnRows={n}\nnColumns=4\ninDegrees=yes\nendheader\n"
        f"time\thip_flexion_r\tknee_angle_r\tankle_angle_r\n{rows}\n"
    )
    return q


@pytest.mark.slow
@pytest.mark.parametrize("fast", [True, False])
def test_replay_answers_every_sample_of_the_trial(tmp_path, bundle_dir, fast):
    trial = tmp_path / "walk.mot"
    _write_trial(trial)
    log = tmp_path / "replay.csv"
    args = ["--replay", str(trial), "--bundle", bundle_dir, "--log", str(log), "--json-status"]
    proc = _edge_run(*args, *(["--fast"] if fast else []))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary = _json_lines(out)[-1]
    assert summary["ended"] == "stream ended"
    assert summary["samples_in"] == summary["estimates_out"] == 300 and summary["skipped"] == 0
    rows = np.loadtxt(log, delimiter=",", skiprows=1, ndmin=2)
    np.testing.assert_array_equal(rows[:, 2], np.arange(300))
    assert ("as fast as possible" if fast else "at its own pace") in err
    if fast:  # the network inline at the model rate: the same answers on any machine
        again = tmp_path / "again.csv"
        proc = _edge_run(
            "--replay", str(trial), "--bundle", bundle_dir, "--log", str(again), "--fast"
        )
        proc.communicate(timeout=120)
        columns = slice(7, None)  # values, not latencies
        np.testing.assert_array_equal(
            np.loadtxt(again, delimiter=",", skiprows=1)[:, columns], rows[:, columns]
        )


def test_a_replay_file_without_the_coordinates_is_one_line(capsys, tmp_path):
    trial = tmp_path / "walk.mot"
    trial.write_text("walk\nendheader\ntime\tknee_angle_r\n0\t1\n0.01\t2\n0.02\t3\n")
    line = _one_line_error(capsys, ["--replay", str(trial)])
    assert "missing column(s) hip_flexion_r, ankle_angle_r" in line


def test_a_non_positive_inference_rate_is_one_line(capsys):
    line = _one_line_error(capsys, ["--simulate", "--inference-rate", "0"])
    assert "--inference-rate must be a positive number of Hz, got 0" in line


@pytest.mark.slow
def test_the_inference_rate_is_the_one_edge_run_describes(tmp_path, bundle_dir):
    trial = tmp_path / "walk.mot"
    _write_trial(trial, n=60)
    proc = _edge_run("--replay", str(trial), "--bundle", bundle_dir, "--inference-rate", "400")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "the network runs at 400 Hz on its own thread" in err


@pytest.mark.slow
def test_report_muscles_choose_what_the_log_holds(tmp_path, bundle_dir):
    trial = tmp_path / "walk.mot"
    _write_trial(trial, n=120)
    log = tmp_path / "chosen.csv"
    proc = _edge_run(
        "--replay",
        str(trial),
        "--bundle",
        bundle_dir,
        "--fast",
        "--log",
        str(log),
        "--report-muscles",
        "vas_lat_r, med_gas_r",
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    header = log.read_text().splitlines()[0].split(",")
    assert [c for c in header if c.endswith(("_activation", "_force"))] == [
        "vas_lat_r_activation",
        "med_gas_r_activation",
        "vas_lat_r_force",
        "med_gas_r_force",
    ]
    assert [c for c in header if c.endswith("_moment")] == [
        f"{c}_r_moment"
        for c in ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle")
    ]
    assert "2 reported: vas_lat_r med_gas_r" in err
    assert "the Hill model holds hip_adduction hip_rotation at 0" in err


def test_an_unknown_report_muscle_is_one_line(capsys, tmp_path, bundle_dir):
    trial = tmp_path / "walk.mot"
    _write_trial(trial, n=50)
    line = _one_line_error(
        capsys,
        ["--replay", str(trial), "--bundle", bundle_dir, "--report-muscles", "vas_lat_r,biceps"],
    )
    assert "['biceps']" in line and "vas_lat_r" in line


@pytest.fixture(scope="module")
def five_input_bundle_dir(tmp_path_factory):
    """An untrained network that reads all five coordinates (an IMU suit's inputs)."""
    from calib import default_subject
    from calib.coordinates import COORDINATES
    from train.export import export_bundle
    from train.model import ModelConfig, build_model

    subject = default_subject()
    config = ModelConfig(
        n_muscles=len(subject.muscles),
        architecture="bigru",
        gru_hidden=8,
        head_dims=(8,),
        input_coordinates=COORDINATES,
    )
    out = tmp_path_factory.mktemp("five") / "bundle"
    return str(export_bundle(build_model(config).eval(), out, subject=subject).directory)


def test_sensors_without_a_coordinate_the_network_reads_are_refused(
    capsys, tmp_path, five_input_bundle_dir
):
    sensors = tmp_path / "sensors.json"
    SensorMap.identity().save(sensors)  # hip flexion, knee, ankle
    line = _one_line_error(
        capsys,
        [
            "--simulate",
            "--bundle",
            five_input_bundle_dir,
            "--sensors",
            str(sensors),
            "--duration",
            "1",
        ],
    )
    assert "hip_adduction, hip_rotation" in line and "--sensors" in line


@pytest.mark.slow
def test_the_live_view_shows_activations_and_forces(bundle_dir):
    proc = _edge_run("--simulate", "--bundle", bundle_dir, "--duration", "3", "--view")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    bars = [line for line in err.splitlines() if line.startswith("psoas ")]
    assert bars and all(line.endswith(" N") and ("█" in line or "·" in line) for line in bars)
    assert "summary:" in out and "ended: the device ended its stream" in out
