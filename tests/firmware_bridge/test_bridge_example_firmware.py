"""The example firmware main loop (firmware_bridge/c/example_firmware.c), compiled and run.

It runs on a POSIX stand-in for the board (tests/firmware_bridge/c/posix_board.c: the
UART is a pseudo-terminal, the joints a formula), first against a minimal Python host
that answers each sample, then against edge-run's own loop: every sample is answered,
the watchdog lets the fresh estimates through, and after the host stops it falls back
to the safe state (MJB_HOST_GONE).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import serial
from helpers.paths import REPO

from calib.sensors import SensorMap
from firmware_bridge.codec import Estimate, Hello, JointSample, StreamDecoder, encode
from firmware_bridge.link import open_link

C_DIR = REPO / "firmware_bridge" / "c"
BOARD = Path(__file__).resolve().parent / "c" / "posix_board.c"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O1"]
HOST_GONE = 2  # mjb_host_state MJB_HOST_GONE


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no system C compiler `cc` on PATH")
    exe = tmp_path_factory.mktemp("firmware") / "example_firmware"
    built = subprocess.run(
        [
            cc,
            *CFLAGS,
            f"-I{C_DIR}",
            str(C_DIR / "mjca_bridge.c"),
            str(C_DIR / "example_firmware.c"),
            str(BOARD),
            "-o",
            str(exe),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, f"the example firmware does not compile:\n{built.stderr}"
    return exe


class Board:
    """The example firmware running on the POSIX board; ``path`` is its UART for the host."""

    def __init__(self, exe: Path, n_samples: int, clock_start_us: int = 0) -> None:
        self.proc = subprocess.Popen(
            [str(exe), str(n_samples), str(clock_start_us)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = self.proc.stdout.readline().split()
        assert first[:1] == ["PTY"], first
        self.path = first[1]

    def wait_streamed(self) -> None:
        line = self.proc.stdout.readline().strip()
        assert line == "STREAMED", (line, self.proc.stderr.read())

    def figures(self) -> dict[str, int]:
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        words = out.split()
        return dict(zip(words[::2], map(int, words[1::2])))


def test_the_example_firmware_against_a_minimal_host(firmware):
    n_samples = 500
    board = Board(firmware, n_samples)
    link = serial.serial_for_url(board.path, baudrate=1_000_000, timeout=0.01)
    link.write(
        encode(
            Hello(
                seq=1,
                timestamp_us=0,
                role=1,
                sample_rate_hz=100.0,
                joint_names=("hip_flexion_r", "knee_angle_r", "ankle_angle_r"),
                reply_requested=1,
            )
        )
    )
    received, done = [], threading.Event()

    def host():
        decoder, answered = StreamDecoder(), 0
        while not done.is_set():
            for m in decoder.feed(link.read(link.in_waiting or 1)):
                received.append(m)
                if isinstance(m, JointSample):
                    answered += 1
                    link.write(
                        encode(
                            Estimate(
                                seq=answered,
                                timestamp_us=0,
                                sample_seq=m.seq,
                                sample_timestamp_us=m.timestamp_us,
                                activations=(0.5,) * 10,
                                forces=(100.0,) * 10,
                                torques=(1.0, 2.0, 3.0),
                                latency_us=50,
                                activation_age_us=7,
                            )
                        )
                    )

    thread = threading.Thread(target=host, daemon=True)
    thread.start()
    board.wait_streamed()
    time.sleep(0.05)
    done.set()  # the host goes quiet: the firmware must fall back to its safe state
    thread.join(5)
    figures = board.figures()
    link.close()
    samples = [m for m in received if isinstance(m, JointSample)]
    hellos = [m for m in received if isinstance(m, Hello)]
    assert figures["sent"] >= n_samples and len(samples) >= n_samples
    assert [m.seq for m in samples] == list(range(len(samples)))
    k = np.arange(len(samples), dtype=np.float32)
    np.testing.assert_array_equal(
        np.array([m.values for m in samples], np.float32),
        np.stack(
            [
                np.float32(0.001) * k,
                np.float32(-0.002) * k,
                np.full(len(samples), 0.05, np.float32),
            ],
            axis=1,
        ),
    )
    assert hellos[0].reply_requested == 1 and hellos[0].joint_names[0] == "hip_flexion_r"
    assert any(h.reply_requested == 0 for h in hellos)  # it answered the host's Hello
    assert figures["applied"] >= 0.9 * n_samples, figures  # fresh and from a live host
    assert figures["n_torques"] == 3 and figures["max_age_us"] == 7
    assert figures["final_state"] == HOST_GONE


@pytest.mark.slow
@pytest.mark.parametrize("clock_start_us", [0, (1 << 32) - 500_000])
def test_the_example_firmware_against_edge_run(firmware, clock_start_us):
    """The example firmware and edge-run's loop, each written from PROTOCOL.md's side:
    the Hello exchange, every sample answered (across the device clock's wrap), the
    estimates applied, and the safe state once edge-run stops."""
    from edge.backends import select_backend
    from edge.bundle import default_bundle_path, load_bundle
    from edge.hill import HillModel
    from edge.runtime import EstimatePipeline, Runtime, RuntimeConfig
    from edge.sources import SerialSource

    bundle = load_bundle(default_bundle_path())
    pipeline = EstimatePipeline(
        bundle,
        select_backend(bundle, "onnxruntime"),
        HillModel(bundle.subject),
        SensorMap.identity(),
    )
    n_samples = 1500
    board = Board(firmware, n_samples, clock_start_us)
    runtime = Runtime(
        RuntimeConfig(status_period_s=60.0), SerialSource(board.path, open_link), pipeline
    )
    summary = {}
    thread = threading.Thread(target=lambda: summary.update(runtime.run()))
    thread.start()
    board.wait_streamed()
    time.sleep(0.1)
    runtime.stop()
    thread.join(10)
    figures = board.figures()
    assert summary["samples_in"] == summary["estimates_out"] + summary["skipped"]
    assert summary["samples_in"] >= n_samples and summary["decoder_errors"] == {}
    # after one window of warm-up (MODEL_NOT_READY), the estimates are applied
    warm_up = bundle.manifest.window / bundle.manifest.sample_rate_hz * 1000
    assert figures["applied"] >= 0.9 * (n_samples - warm_up)
    assert figures["n_torques"] == len(bundle.subject.coordinates)
    assert 0 < figures["max_age_us"] <= pipeline.inference.max_activation_age_s * 1e6
    assert figures["final_state"] == HOST_GONE
