"""edge-bench: its summaries, ramp, verdict and speed-ups, its bad-input lines, and a real
short run against the device simulator (JSON keys, histogram file, exit codes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.runtime_device import PtyDevice, gait_angles, runtime_bundle

from edge.bench.cli import UsageError as BenchUsageError
from edge.bench.cli import main, parse_ramp
from edge.bench.end_to_end import find_max_sustainable, period_figures, sustained
from edge.bench.report import speedups, verdict
from edge.bench.timing import PERCENTS, summarize, summarize_histogram


def test_summarize_matches_numpy_percentiles():
    values = np.random.default_rng(1).gamma(2.0, 50.0, 5000)
    s = summarize(values)
    assert (
        s["n"] == 5000 and s["min"] == round(values.min(), 2) and s["max"] == round(values.max(), 2)
    )
    for key, p in PERCENTS.items():
        assert s[key] == pytest.approx(np.percentile(values, p), abs=0.01)


def test_histogram_summary_is_the_inverted_cdf_of_its_values():
    values = np.random.default_rng(2).integers(20, 900, 3001)
    histogram = np.bincount(values, minlength=1000)
    s = summarize_histogram(histogram)
    assert s["n"] == values.size and s["min"] == values.min() and s["max"] == values.max()
    for key, p in PERCENTS.items():
        assert s[key] == np.percentile(values, p, method="inverted_cdf")
    assert summarize_histogram(np.zeros(10, dtype=np.int64)) is None


def test_period_and_jitter_of_write_times():
    period_ns = 1_000_000
    stamps = np.arange(101) * period_ns
    stamps[50] += 300_000  # one estimate 300 µs late: two intervals off by 300 µs
    figures = period_figures(stamps.tolist(), 1000.0)
    assert figures["period_us"]["p50"] == pytest.approx(1000.0)
    assert figures["jitter_us"]["max"] == pytest.approx(300.0)
    assert figures["period_us"]["max"] == pytest.approx(1300.0)
    assert figures["period_us"]["min"] == pytest.approx(700.0)
    assert period_figures([1, 2], 1000.0) == {"period_us": None, "jitter_us": None}


def _run(skipped: int, p99: float, n: int = 1000, lost: int = 0) -> dict:
    return {
        "skipped": skipped,
        "samples_in": n,
        "estimates_out": n - skipped,
        "simulator": {"lost": lost},
        "end_to_end_us": {"p50": p99 / 2, "p99": p99},
        "rate_hz": 1000.0,
        "inference": "model-rate",
        "backend": "onnxruntime",
    }


def test_sustained_needs_every_sample_answered_within_the_budget():
    assert sustained(_run(0, 999.0), 1000.0)
    assert sustained(_run(0, 1000.0), 1000.0)
    assert not sustained(_run(0, 1001.0), 1000.0)
    assert not sustained(_run(1, 10.0), 1000.0)
    assert not sustained(_run(0, 10.0, lost=1), 1000.0)
    assert not sustained(_run(0, 10.0, n=0), 1000.0)


def test_ramp_stops_at_the_first_rate_not_held():
    p99_at = {500.0: 200.0, 1000.0: 300.0, 2000.0: 1500.0, 4000.0: 100.0}
    measured = []

    def measure(rate):
        measured.append(rate)
        return _run(0, p99_at[rate])

    best, steps = find_max_sustainable(measure, [4000.0, 1000.0, 500.0, 2000.0], 1000.0)
    assert best == 1000.0
    assert measured == [500.0, 1000.0, 2000.0]  # rising; 4000 never tried after 2000 failed
    assert [s["sustained"] for s in steps] == [True, True, False]
    assert steps[-1]["p99_us"] == 1500.0
    best, steps = find_max_sustainable(lambda rate: _run(3, 10.0), [500.0, 1000.0], 1000.0)
    assert best is None and len(steps) == 1


def test_verdict_and_speedups():
    assert verdict(_run(0, 400.0), 1000.0)["pass"]
    failed = verdict(_run(2, 1400.0), 1000.0)
    assert not failed["pass"]
    assert "p99 1400 µs > target 1000 µs" in failed["line"] and "2 of 1000" in failed["line"]
    assert not verdict(None, 1000.0)["pass"]
    reference = {"eager_torch_us": {"p50": 2000.0, "p99": 4000.0}, "static_optimization_us": None}
    ratio = speedups({"p50": 100.0, "p99": 400.0}, reference)
    assert ratio == {
        "eager_torch_p50": 20.0,
        "eager_torch_p99": 10.0,
        "static_optimization_p50": None,
        "static_optimization_p99": None,
    }


def test_ramp_rates_parse():
    assert parse_ramp("2000, 1000,1000") == [1000.0, 2000.0]
    assert parse_ramp("none") == []
    for bad in ("fast", "0,1000", "", "20000"):
        with pytest.raises(BenchUsageError):
            parse_ramp(bad)


def _bad_input_line(capsys, argv: list[str]) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and lines[0].startswith("edge-bench: error: "), lines
    assert captured.out == ""  # nothing was timed
    return lines[0]


def test_bad_input_is_one_line_before_any_timing(capsys, tmp_path):
    line = _bad_input_line(capsys, ["--backends", "onnxruntime,fast"])
    assert "fast" in line and "tensorrt, onnxruntime, torch" in line
    line = _bad_input_line(capsys, ["--backends", "tensorrt"])  # no CUDA here
    assert "tensorrt cannot load here" in line and "available here: onnxruntime" in line
    line = _bad_input_line(capsys, ["--port", "/dev/null"])
    assert "not a serial port" in line
    regular = tmp_path / "ttyUSB0"
    regular.write_text("")
    assert "a regular file" in _bad_input_line(capsys, ["--port", str(regular)])
    assert "does not exist" in _bad_input_line(capsys, ["--port", str(tmp_path / "ttyACM9")])
    line = _bad_input_line(capsys, ["--plot", str(tmp_path / "latency.bmpx")])
    assert "'bmpx'" in line and "png" in line
    assert "folder" in _bad_input_line(capsys, ["--json", str(tmp_path / "no" / "b.json")])
    assert "--rate" in _bad_input_line(capsys, ["--rate", "0"])
    assert "bundle" in _bad_input_line(capsys, ["--bundle", str(tmp_path)])


def _short_run(tmp_path, *extra: str) -> list[str]:
    return [
        "--bundle",
        str(runtime_bundle().directory),
        "--backends",
        "onnxruntime",
        "--rate",
        "200",
        "--seconds",
        "1",
        "--frames",
        "100",
        *extra,
    ]


@pytest.mark.slow
def test_a_short_real_run_writes_the_promised_json_and_histogram(capsys, tmp_path):
    report_path, plot_path = tmp_path / "bench.json", tmp_path / "latency.png"
    code = main(
        _short_run(
            tmp_path,
            "--ramp",
            "100,200",
            "--ramp-seconds",
            "1",
            "--reference-calls",
            "10",
            "--target-p99-us",
            "1e6",
            "--json",
            str(report_path),
            "--plot",
            str(plot_path),
        )
    )
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(report_path.read_text())
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for key in ("end_to_end_us", "stages", "skipped", "max_sustainable_hz", "machine", "reference"):
        assert key in report
    assert {
        "decode",
        "accept",
        "window",
        "inference.onnxruntime",
        "hill",
        "encode",
        "write",
    } <= set(report["stages"])
    for figures in report["stages"].values():
        assert (
            figures["min"] <= figures["p50"] <= figures["p99"] <= figures["p999"] <= figures["max"]
        )
    for name in ("eager_torch_us", "static_optimization_us"):
        assert report["reference"][name]["p50"] <= report["reference"][name]["p99"]
    assert set(report["end_to_end"]) == {"model-rate", "per-sample"}
    for run in report["end_to_end"].values():
        assert run["samples_in"] == run["estimates_out"] + run["skipped"] > 100
        assert sum(run["latency_histogram"]["count"]) == run["estimates_out"]
    assert report["end_to_end_us"] == report["end_to_end"]["model-rate"]["end_to_end_us"]
    assert report["max_sustainable_hz"] == 200.0
    assert [s["rate_hz"] for s in report["ramp"]["steps"]] == [100.0, 200.0]
    assert report["machine"]["cores"] >= 1
    assert report["verdict"]["pass"] and "verdict: PASS" in out
    assert "static optimisation per frame" in out and "eager PyTorch per sample" in out


@pytest.mark.slow
@pytest.mark.parametrize("check, expected_exit", [(False, 0), (True, 1)])
def test_a_failed_verdict_exits_non_zero_only_with_check(capsys, tmp_path, check, expected_exit):
    argv = _short_run(
        tmp_path, "--ramp", "none", "--reference-calls", "0", "--target-p99-us", "1"
    ) + (["--check"] if check else [])
    assert main(argv) == expected_exit
    assert "verdict: FAIL" in capsys.readouterr().out


@pytest.mark.slow
def test_end_to_end_against_a_device_on_a_serial_port(capsys, tmp_path):
    rate = 200.0
    device = PtyDevice(*gait_angles(2400, rate), rate).start()  # 12 s of samples
    try:
        code = main(
            _short_run(
                tmp_path,
                "--port",
                device.path,
                "--rate",
                str(rate),
                "--reference-calls",
                "0",
                "--json",
                str(tmp_path / "b.json"),
            )
        )
    finally:
        device.wait()  # the device thread ends before its pty is closed
        device.close()
    assert code in (0, 1)
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["source"] == device.path and report["ramp"]["steps"] == []
    for run in report["end_to_end"].values():
        assert run["estimates_out"] > 0.5 * rate  # about a second of the device's samples
    assert "not run: a real device sends at its own rate" in capsys.readouterr().out
