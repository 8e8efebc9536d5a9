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
    np.testing.assert_array_equal(
        recorder.recent_since(recorder.recorded - 3), [values[-2], values[-1], 10**9]
    )  # one still pending
    recorder.flush()
    assert recorder.histogram[-1] == 1
    assert histogram_percentiles(np.zeros(10, dtype=np.int64), (50.0,)) == {"p50": None}
    np.testing.assert_array_equal(
        recorder.recent_since(recorder.recorded - 3), [values[-2], values[-1], 10**9]
    )


class _Estimate:
    activations = np.array([0.25, 0.5])
    forces = np.array([120.0, 980.0])


def test_summary_tells_a_device_that_stopped_from_a_link_error():
    counters = RunCounters(samples_in=10, estimates_out=8, skipped=2, device_silences=1)
    counters.events["output_dropped"] += 2
    latency, age = LatencyRecorder(), LatencyRecorder()
    for v in (300, 400, 500):
        latency.record(v)
        age.record(10 * v)
    summary = run_summary(counters, latency, age, 1.5, {"crc": 3, "cobs": 0}, "stream ended")
    assert summary["samples_in"] == summary["estimates_out"] + summary["skipped"]
    assert summary["decoder_errors"] == {"crc": 3} and summary["events"] == {"output_dropped": 2}
    assert summary["latency_us"]["p50"] == 400 and summary["activation_age_us"]["p50"] == 4000
    text = format_summary(summary)
    assert "skipped 2" in text and "crc 3" in text and "output_dropped 2" in text
    assert "stopped sending 1 time(s) while the link stayed open" in text
    assert "link: no errors" in text and "ended: the device ended its stream" in text
    counters = RunCounters(link_lost=2, link_reopened=1)
    text = format_summary(run_summary(counters, latency, age, 1.0, {}, "stopped"))
    assert "device: sent without stopping" in text
    assert "link: lost 2 time(s), reopened 1 time(s)" in text


def test_json_status_lines_carry_the_estimates():
    counters = RunCounters(samples_in=10, estimates_out=8, skipped=2)
    latency = LatencyRecorder()
    latency.record(300)
    stream = io.StringIO()
    reporter = StatusReporter(
        counters,
        latency,
        json_lines=True,
        period_s=0.05,
        stream=stream,
        estimate=_Estimate(),
        muscles=("PS_r", "RF_r"),
    )
    with reporter:
        time.sleep(0.2)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all(line["type"] == "status" for line in lines)
    assert {"input_hz", "estimate_hz", "latency_us", "skipped", "events"} <= set(lines[0])
    assert lines[0]["activations"] == {"PS_r": 0.25, "RF_r": 0.5}
    assert lines[0]["forces_n"] == {"PS_r": 120.0, "RF_r": 980.0}


@pytest.mark.parametrize("view", ["line", "bars"])
def test_text_status_shows_activations_and_forces(view):
    counters = RunCounters(samples_in=10, estimates_out=8)
    stream = io.StringIO()
    with StatusReporter(
        counters,
        LatencyRecorder(),
        period_s=0.05,
        stream=stream,
        estimate=_Estimate(),
        muscles=("PS_r", "RF_r"),
        view=view,
    ):
        time.sleep(0.2)
    text = stream.getvalue()
    assert "latency p50" in text
    if view == "line":
        assert "activation %  PS  25  RF  50" in text and "force N       PS  120  RF  980" in text
    else:
        assert "PS ██████······" in text and " 0.25     120 N" in text
        assert "RF ████████████" in text and " 0.50     980 N" in text


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
