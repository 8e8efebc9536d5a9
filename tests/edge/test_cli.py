"""edge-run as a user runs it: bad input is one line, SIGINT flushes, --simulate answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_runtime_support import PtyDevice, gait_angles, runtime_bundle

from edge.cli import main


@pytest.fixture(scope="module")
def bundle_dir():
    return str(runtime_bundle().directory)


def _one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("edge-run: "), err
    return err[0]


def test_help_explains_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--port", "--simulate", "--rate", "--bundle", "--sensors", "--backend",
                   "--out-port", "--log", "--duration", "--json-status", "--rt-priority", "--cpu"):
        assert option in text


def test_bad_input_is_one_clear_line(capsys, tmp_path, bundle_dir):
    assert "--port" in _one_line_error(capsys, [])
    assert "bundle" in _one_line_error(capsys, ["--port", "x", "--bundle", str(tmp_path / "no")])
    bad = tmp_path / "sensors.json"
    bad.write_text("{not json")
    assert "sensors" in _one_line_error(
        capsys, ["--port", "x", "--bundle", bundle_dir, "--sensors", str(bad)])
    assert "--cpu" in _one_line_error(
        capsys, ["--port", "x", "--bundle", bundle_dir, "--cpu", "4096"])
    assert "--rt-priority" in _one_line_error(
        capsys, ["--port", "x", "--bundle", bundle_dir, "--rt-priority", "1000"])
    assert "--duration" in _one_line_error(capsys, ["--port", "x", "--duration", "-1"])
    assert "cannot open serial link" in _one_line_error(
        capsys, ["--port", "nosuch://x", "--bundle", bundle_dir])
    assert "unknown backend" in _one_line_error(
        capsys, ["--port", "x", "--bundle", bundle_dir, "--backend", "nope"])


def _edge_run(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_sigint_flushes_the_log_and_prints_the_summary(tmp_path, bundle_dir):
    rate = 200.0
    ts, q = gait_angles(4000, rate)
    device = PtyDevice(ts, q, rate)
    log = tmp_path / "run.csv"
    proc = _edge_run("--port", device.path, "--bundle", bundle_dir, "--log", str(log),
                     "--json-status")
    startup = []
    try:
        for line in proc.stderr:
            startup.append(line)
            if line.startswith("ready in"):
                break
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


def test_simulate_answers_within_30_s(bundle_dir):
    start = time.monotonic()
    proc = _edge_run("--simulate", "--bundle", bundle_dir, "--duration", "4", "--json-status")
    first_answer = None
    lines = []
    try:
        for line in proc.stdout:
            record = json.loads(line)
            lines.append(record)
            if first_answer is None and record.get("estimates_out", 0) > 0:
                first_answer = time.monotonic() - start
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert first_answer is not None and first_answer < 30.0, (first_answer, err)
    summary = lines[-1]
    assert summary["type"] == "summary"
    assert summary["samples_in"] == summary["estimates_out"] + summary["skipped"] > 100
    assert summary["simulator"]["answered"] > 100
    assert "simulator at 200 Hz" in err


def test_simulate_without_duration_runs_until_sigint_and_answers_every_sample(bundle_dir):
    """No preset end: after Ctrl-C the simulator ends its stream and every sample is answered."""
    proc = _edge_run("--simulate", "--bundle", bundle_dir, "--json-status")
    answered_at = None
    lines = []
    try:
        for line in proc.stdout:
            record = json.loads(line)
            lines.append(record)
            if answered_at is None and record.get("estimates_out", 0) > 0:
                answered_at = time.monotonic()
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
    assert "device_silent" not in summary["errors"]
    device = summary["simulator"]
    assert device["samples_sent"] == summary["samples_in"] and device["lost"] == 0, device
