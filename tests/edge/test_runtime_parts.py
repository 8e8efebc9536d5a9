"""The runtime's small parts: latency statistics, status lines, real-time settings."""

from __future__ import annotations

import io
import json
import os
import sys
import time

import numpy as np
import pytest

from edge.realtime import (
    RealtimeError,
    SwitchInterval,
    latency_timer_warning,
    pin_to_cpus,
    set_realtime_priority,
)
from edge.status import (
    LatencyRecorder,
    RunCounters,
    StatusReporter,
    format_summary,
    histogram_percentiles,
    run_summary,
)


def test_histogram_percentiles_match_numpy_on_integers():
    values = np.random.default_rng(0).integers(100, 5000, 20000)
    recorder = LatencyRecorder()
    for v in values:
        recorder.record(int(v))
    p = recorder.percentiles()
    for key, q in (("p50", 50), ("p99", 99), ("p999", 99.9)):
        assert p[key] == np.percentile(values, q, method="inverted_cdf")
    recorder.record(10**9)  # beyond the histogram: counted in its last bin
    assert recorder.histogram[-1] == 1
    assert histogram_percentiles(np.zeros(10, dtype=np.int64), (50.0,)) == {"p50": None}
    np.testing.assert_array_equal(recorder.recent_since(recorder.recorded - 3),
                                  [values[-2], values[-1], 10**9])


def test_summary_and_json_status_lines():
    counters = RunCounters(samples_in=10, estimates_out=8, skipped=2)
    counters.errors["crc"] += 3
    latency = LatencyRecorder()
    for v in (300, 400, 500):
        latency.record(v)
    summary = run_summary(counters, latency, 1.5)
    assert summary["samples_in"] == summary["estimates_out"] + summary["skipped"]
    assert summary["errors"] == {"crc": 3} and summary["latency_us"]["p50"] == 400
    assert "skipped 2" in format_summary(summary) and "crc 3" in format_summary(summary)

    stream = io.StringIO()
    reporter = StatusReporter(counters, latency, json_lines=True, period_s=0.05, stream=stream)
    reporter.start()
    time.sleep(0.2)
    reporter.stop()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all(line["type"] == "status" for line in lines)
    assert {"input_hz", "estimate_hz", "latency_us", "skipped", "errors"} <= set(lines[0])


def test_latency_timer_warning_says_how_to_fix():
    assert latency_timer_warning("/dev/ttyUSB0", None) is None
    assert latency_timer_warning("/dev/ttyUSB0", 1) is None
    text = latency_timer_warning("/dev/ttyUSB0", 16)
    assert "16 ms" in text and "62 Hz" in text
    assert "/sys/bus/usb-serial/devices/ttyUSB0/latency_timer" in text and "udev" in text


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux scheduling calls")
def test_realtime_settings_refuse_clearly():
    with pytest.raises(RealtimeError, match="not available to this process"):
        pin_to_cpus((4096,))
    with pytest.raises(RealtimeError, match="must lie in"):
        set_realtime_priority(1000)
    current = os.sched_getaffinity(0)
    try:
        assert "pinned to CPU" in pin_to_cpus((min(current),))
        assert os.sched_getaffinity(0) == {min(current)}
    finally:
        os.sched_setaffinity(0, current)


def test_switch_interval_is_restored():
    before = sys.getswitchinterval()
    with SwitchInterval(0.0003):
        assert sys.getswitchinterval() == pytest.approx(0.0003)
    assert sys.getswitchinterval() == before
