"""The device simulator over a real pseudo-terminal against a plain codec "host"."""

import json
import math
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from firmware_bridge import protocol as P
from firmware_bridge.codec import Estimate, Heartbeat, Hello, JointSample, StreamDecoder, encode
from firmware_bridge.link import PseudoTerminal, open_link
from firmware_bridge.normative_gait import JOINT_NAMES, load_normative_gait
from firmware_bridge.simulator import (
    DeviceSimulator,
    SimulatorConfig,
    SimulatorConfigError,
    SimulatorProcess,
)
from firmware_bridge.simulator.report import LatencyHistogram
from firmware_bridge.timestamps import WRAP_US, TimestampUnwrapper

MUSCLES = ("PS", "RF", "BF")


class EchoHost(threading.Thread):
    """Opens the tty like edge-run would, says Hello, answers samples with Estimates.

    answer_every: answer one sample in n and report the others as skipped;
    silent_every: never answer (nor report) one sample in n, to make lost estimates.
    """

    def __init__(self, path, answer_every=1, silent_every=0):
        super().__init__(daemon=True)
        self.port = open_link(path, timeout=0.005)
        self.answer_every = answer_every
        self.silent_every = silent_every
        self.samples = []
        self.decoder = StreamDecoder()
        self.device_hellos = []
        self.done = threading.Event()
        self.error = None

    def run(self):
        try:
            self._serve()
        except OSError as exc:
            self.error = exc
        finally:
            self.port.close()

    def _serve(self):
        self.port.write(
            encode(
                Hello(
                    seq=0,
                    timestamp_us=0,
                    role=P.ROLE_HOST,
                    sample_rate_hz=0.0,
                    muscle_names=MUSCLES,
                    reply_requested=1,
                )
            )
        )
        self.port.write(encode(Heartbeat(seq=0, timestamp_us=0, role=P.ROLE_HOST)))
        seq = skipped = 0
        while not self.done.is_set():
            for m in self.decoder.feed(self.port.read(4096)):
                if isinstance(m, Hello):
                    self.device_hellos.append(m)
                if not isinstance(m, JointSample):
                    continue
                self.samples.append(m)
                n = len(self.samples)
                if self.silent_every and n % self.silent_every == 0:
                    continue
                if n % self.answer_every:
                    skipped += 1
                    continue
                self.port.write(
                    encode(
                        Estimate(
                            seq=seq,
                            timestamp_us=0,
                            sample_seq=m.seq,
                            sample_timestamp_us=m.timestamp_us,
                            activations=(0.1, 0.2, 0.3),
                            forces=(10.0, 20.0, 30.0),
                            torques=(1.0, -2.0, 0.5),
                            skipped=skipped,
                            latency_us=100,
                        )
                    )
                )
                seq += 1
                skipped = 0


def run_against_host(config, **host_options):
    with PseudoTerminal() as pty:
        host = EchoHost(pty.device_path, **host_options)
        host.start()
        report = DeviceSimulator(config, pty).run()
        host.done.set()
        host.join(5)
    assert host.error is None
    return report, host


def bits(values):
    return [np.float32(v).view(np.uint32) for v in values]


def test_plays_the_normative_gait_and_every_sample_is_answered():
    config = SimulatorConfig(rate_hz=200, duration_s=1.0, wait_for_host_s=5.0, drain_s=1.0)
    report, host = run_against_host(config)
    assert report.samples_sent == report.samples_scheduled == 200
    assert report.answered == 200 and report.lost == 0 and report.unmatched == 0
    assert 0 < report.latency_ms_p50 <= report.latency_ms_p99 <= report.latency_ms_max
    assert report.host_hello is not None and report.host_hello.muscle_names == MUSCLES
    assert report.heartbeats_received >= 1
    # The device's own Hello (asking for ours) and its answer to ours, in either order.
    assert sorted(h.reply_requested for h in host.device_hellos) == [0, 1]
    assert all(
        h.joint_names == JOINT_NAMES and h.sample_rate_hz == 200.0 for h in host.device_hellos
    )
    # The host got exactly what the simulator says it sent.
    assert [(s.seq, s.timestamp_us, bits(s.values)) for s in report.sent] == [
        (m.seq, m.timestamp_us, bits(m.values)) for m in host.samples
    ]
    expected = load_normative_gait().angles_at_time(np.arange(200) / 200.0)
    np.testing.assert_allclose([s.values for s in report.sent], expected, atol=1e-6)
    steps = np.diff([s.timestamp_us for s in report.sent])
    assert np.all(steps == 5000)  # the deadline schedule: no drift in device time
    assert sum(report.decoder_errors.values()) == 0


def test_faults_are_injected_and_survive_the_wire():
    config = SimulatorConfig(
        rate_hz=400,
        duration_s=1.0,
        wait_for_host_s=5.0,
        seed=3,
        drop_probability=0.05,
        garbage_probability=0.05,
        nan_probability=0.05,
        jitter_us=200.0,
        noise_rad=0.01,
    )
    report, host = run_against_host(config)
    assert 5 < report.samples_dropped < 40 and report.garbage_bursts > 5
    assert report.samples_sent + report.samples_dropped == 400
    # Garbage costs no sample: the host's decoder resynchronises on every frame.
    assert [m.seq for m in host.samples] == [s.seq for s in report.sent]
    assert sum(host.decoder.errors.values()) > 0
    nan_samples = [m for m in host.samples if any(math.isnan(v) for v in m.values)]
    assert 5 < len(nan_samples) < 40
    assert all(m.valid_mask == 0b111 for m in nan_samples)
    steps = np.diff([s.timestamp_us for s in report.sent]).astype(float)
    assert np.std(steps) > 100 and abs(np.median(steps) - 2500) < 300


def test_skipped_and_lost_estimates_are_told_apart():
    config = SimulatorConfig(rate_hz=200, duration_s=0.5, wait_for_host_s=5.0, drain_s=0.3)
    report, _ = run_against_host(config, answer_every=2, silent_every=5)
    # Sample n (1-based): n % 5 == 0 never answered (lost); else odd n skipped, reported
    # with the next answer (the last, n = 99, has none); else answered.
    assert report.answered == 40
    assert report.skipped_reported == 39
    assert report.lost == 21


def test_encoder_counts_with_quantisation():
    config = SimulatorConfig(
        rate_hz=100,
        duration_s=0.3,
        wait_for_host_s=5.0,
        encoding=P.ENCODING_COUNTS,
        counts_per_rev=4096,
        drain_s=0.3,
    )
    report, host = run_against_host(config)
    step = 2 * np.pi / 4096
    expected = np.round(load_normative_gait().angles_at_time(np.arange(30) / 100.0) / step)
    assert all(m.encoding == P.ENCODING_COUNTS for m in host.samples)
    np.testing.assert_array_equal([m.values for m in host.samples], expected)
    assert [s.values for s in report.sent] == [m.values for m in host.samples]


def test_device_clock_wraps_and_the_host_unwraps_it():
    config = SimulatorConfig(
        rate_hz=100,
        duration_s=0.5,
        wait_for_host_s=5.0,
        timestamp_start_us=WRAP_US - 200_000,
        drain_s=0.3,
    )
    report, host = run_against_host(config)
    raw = [m.timestamp_us for m in host.samples]
    assert min(raw) < 1_000_000 < WRAP_US - 300_000 < max(raw)  # it did wrap
    assert report.answered == 50 and report.unmatched == 0
    unwrapper = TimestampUnwrapper()
    assert np.all(np.diff([unwrapper.unwrap(t) for t in raw]) == 10_000)


def test_simulator_in_a_separate_process_reports_back():
    config = SimulatorConfig(rate_hz=100, duration_s=0.5, wait_for_host_s=20.0, drain_s=0.5)
    with SimulatorProcess(config) as process:
        path = process.start(timeout=60)
        assert path.startswith("/dev/")
        host = EchoHost(path)
        host.start()
        report = process.join(timeout=60)
        host.done.set()
        host.join(5)
        assert host.error is None  # the link outlived the run: the host saw no failure
    assert report.samples_sent == 50 and report.answered == 50
    assert [s.seq for s in report.sent] == [m.seq for m in host.samples]
    assert len(report.received) == 50 and report.received[0].estimate.forces == (10, 20, 30)


@pytest.mark.slow
def test_plays_without_end_until_stopped_keeping_only_the_latest_records():
    config = SimulatorConfig(
        rate_hz=200, duration_s=None, keep_records=50, wait_for_host_s=5.0, drain_s=1.0
    )
    with PseudoTerminal() as pty:
        host = EchoHost(pty.device_path)
        host.start()
        simulator = DeviceSimulator(config, pty)
        simulator.start()
        time.sleep(1.5)
        with pytest.raises(TimeoutError):
            simulator.join(0)  # still playing: the run has no preset end
        simulator.stop()
        report = simulator.join(10)
        host.done.set()
        host.join(5)
    assert host.error is None
    n = report.samples_sent
    assert n > 150 and report.samples_scheduled == n
    assert report.answered == n and report.lost == 0 and report.unmatched == 0
    assert [m.seq for m in host.samples] == list(range(n))
    # The records are a ring of the latest 50; the figures above count the whole run.
    assert len(report.sent) == len(report.received) == 50
    assert [s.seq for s in report.sent] == list(range(n - 50, n))
    expected = load_normative_gait().angles_at_time(np.arange(n - 50, n) / 200.0)
    np.testing.assert_allclose([s.values for s in report.sent], expected, atol=1e-6)
    assert np.all(np.diff([m.timestamp_us for m in host.samples]) == 5000)


def test_latency_percentiles_over_a_run_of_any_length_are_within_a_tenth_of_a_percent():
    latencies_ns = np.random.default_rng(0).lognormal(np.log(2e6), 0.8, 20_000).astype(np.int64)
    histogram = LatencyHistogram()
    for latency in latencies_ns:
        histogram.record(int(latency))
    for q in (50, 99, 99.9):
        exact_ms = np.percentile(latencies_ns, q, method="inverted_cdf") / 1e6
        assert histogram.percentile_ms(q) == pytest.approx(exact_ms, rel=1e-3)
    assert histogram.max_ms() == latencies_ns.max() / 1e6
    assert math.isnan(LatencyHistogram().percentile_ms(50))


def test_config_refuses_nonsense_with_a_reason():
    with pytest.raises(SimulatorConfigError, match="counts_per_rev"):
        SimulatorConfig(encoding=P.ENCODING_COUNTS)
    with pytest.raises(SimulatorConfigError, match="rate_hz"):
        SimulatorConfig(rate_hz=0)
    with pytest.raises(SimulatorConfigError, match="probabilities"):
        SimulatorConfig(drop_probability=1.5)
    with pytest.raises(SimulatorConfigError, match="duration_s"):
        SimulatorConfig(duration_s=0)


def bridge_sim_against_host(*args, interrupt_after_samples=None):
    """Run bridge-sim with ``args`` against an EchoHost on the pty it prints; Ctrl-C it once
    the host has seen ``interrupt_after_samples`` (None: let it end). (returncode, out, err)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_bridge.simulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        match = re.match(r"device path: (\S+)", first)
        assert match, first + proc.stderr.read()
        host = EchoHost(match.group(1))
        host.start()
        if interrupt_after_samples is not None:
            deadline = time.monotonic() + 30
            while len(host.samples) < interrupt_after_samples and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        host.done.set()
        host.join(5)
    finally:
        proc.kill()
    return proc.returncode, out, err


def test_bridge_sim_cli_over_its_own_pty(tmp_path):
    returncode, out, err = bridge_sim_against_host(
        "--rate",
        "200",
        "--duration",
        "0.5",
        "--wait-for-host",
        "20",
        "--garbage",
        "0.05",
        "--seed",
        "1",
        "-o",
        str(tmp_path / "report.json"),
    )
    assert returncode == 0, err
    assert re.search(r"sent 100/100 samples", out), out
    assert re.search(r"answered 100,.* lost 0", out), out
    assert "p99.9" in out
    figures = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert figures["samples_sent"] == 100 and figures["answered"] == 100
    assert "sent" not in figures and "received" not in figures


def test_bridge_sim_plays_until_ctrl_c_and_reports():
    returncode, out, err = bridge_sim_against_host(
        "--rate", "200", "--duration", "0", "--wait-for-host", "20", interrupt_after_samples=100
    )
    assert returncode == 0, err
    sent = re.search(r"sent (\d+)/(\d+) samples", out)
    assert sent and int(sent.group(1)) == int(sent.group(2)) >= 100, out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rate", "0"], "rate_hz"),
        (["--send-counts"], "counts_per_rev"),
        (["--port", "/dev/no-such-port"], "/dev/no-such-port"),
        (["--motion", "/nonexistent.mot", "--wait-for-host", "0"], "nonexistent.mot"),
        (["-o", "/nonexistent-folder/report.json"], "/nonexistent-folder does not exist"),
        (["--rate", "fast"], "invalid float value: 'fast'"),
    ],
)
def test_bridge_sim_bad_input_is_one_line(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "firmware_bridge.simulator", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert re.search(rf"^bridge-sim: error: .*{re.escape(message)}", result.stderr, re.M), (
        result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("debug", [False, True])
def test_bridge_sim_failing_link_is_an_internal_error_with_a_traceback_only_under_debug(debug):
    """The port goes away mid-run (its other side closes): exit 1, one line; --debug adds
    the traceback."""
    with PseudoTerminal() as pty:
        proc = subprocess.Popen(
            [sys.executable, "-m", "firmware_bridge.simulator", "--port", pty.device_path]
            + ["--rate", "200", "--duration", "30", "--wait-for-host", "0"]
            + (["--debug"] if debug else []),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first = b""
            deadline = time.monotonic() + 30
            while not first and time.monotonic() < deadline:
                first = pty.read(4096)  # the device streams: it has opened the port
            assert first, "bridge-sim sent nothing"
        except BaseException:
            proc.kill()
            raise
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert re.match(r"bridge-sim: internal error: \w+: ", lines[-1]), err
    assert ("Traceback" in err) is debug, err
    if not debug:
        assert len(lines) == 1, err
