"""--zero-port: a standing capture recorded from the device simulator over a pseudo-terminal."""

import threading
import time

import numpy as np
import pytest

from calib import COORDINATES, SensorError, load_sensors
from calib.cli import main
from calib.port_capture import capture_from_port
from calib.zeroing import zero_sensors
from firmware_bridge.codec import JointSample, encode
from firmware_bridge.link import PseudoTerminal
from firmware_bridge.simulator import DeviceSimulator, SimulatorConfig

STANDING_RAD = (0.05, -0.08, 0.03)


def _standing_mot(path):
    rows = "\n".join(
        f"{t:.2f}\t" + "\t".join(f"{np.degrees(a):.6f}" for a in STANDING_RAD)
        for t in (0.0, 1.0, 2.0)
    )
    path.write_text(
        "standing\nversion=1\nnRows=3\nnColumns=4\ninDegrees=yes\nendheader\n"
        "time\thip_flexion_r\tknee_angle_r\tankle_angle_r\n" + rows + "\n"
    )
    return path


@pytest.fixture()
def device():
    """Start a simulated device on a pty; yields a function taking the config."""
    started = []

    def start(config):
        pty = PseudoTerminal()
        simulator = DeviceSimulator(config, pty)
        simulator.start()
        started.append((simulator, pty))
        return pty.device_path

    yield start
    for simulator, pty in started:
        simulator.join(timeout=10)
        pty.close()


def test_still_device_is_zeroed(tmp_path, device, capsys):
    config = SimulatorConfig(
        rate_hz=200.0, duration_s=1.5, motion_file=str(_standing_mot(tmp_path / "stand.mot")),
        noise_rad=0.0005, seed=3,
    )  # fmt: skip
    out = tmp_path / "sensors.json"
    port = device(config)
    assert main(["--zero-port", port, "--seconds", "0.8", "--quiet", "-o", str(out)]) == 0
    sensors = load_sensors(out)
    offsets = [c.zero_offset for c in sensors.channels]
    np.testing.assert_allclose(offsets, STANDING_RAD, atol=3e-4)
    assert "wrote" in capsys.readouterr().out


def test_walking_device_is_refused(device):
    port = device(SimulatorConfig(rate_hz=200.0, duration_s=1.5))
    capture = capture_from_port(port, 0.8, progress=False)
    assert capture.raw.shape[1] == 3 and len(capture.raw) > 50
    with pytest.raises(SensorError, match="the capture moves"):
        zero_sensors(capture)


def test_unopenable_port_is_one_line(tmp_path, capsys):
    code = main(
        [
            "--zero-port",
            str(tmp_path / "no-tty"),
            "--seconds",
            "0.1",
            "-o",
            str(tmp_path / "s.json"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("calib-subject: error: cannot open serial link")
    assert "Traceback" not in err


def test_a_five_channel_device_is_captured_without_a_template(tmp_path):
    """An IMU suit streaming all five coordinates over a real pty, through the real codec."""
    standing = (0.05, 0.02, -0.03, -0.08, 0.03)
    pty = PseudoTerminal()
    stop = threading.Event()

    def stream():
        seq = 0
        while not stop.is_set():
            sample = JointSample(
                seq=seq, timestamp_us=seq * 5000, values=standing, valid_mask=0b11111
            )
            pty.write(encode(sample))
            seq += 1
            time.sleep(0.005)

    writer = threading.Thread(target=stream, daemon=True)
    writer.start()
    try:
        capture = capture_from_port(pty.device_path, 0.5, progress=False)
    finally:
        stop.set()
        writer.join(timeout=5)
        pty.close()
    assert capture.channels == ("ch0", "ch1", "ch2", "ch3", "ch4") and len(capture.raw) > 20
    sensors = zero_sensors(capture)
    assert sensors.coordinates == COORDINATES
    np.testing.assert_allclose([c.zero_offset for c in sensors.channels], standing, atol=1e-7)
