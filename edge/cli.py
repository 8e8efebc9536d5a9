"""edge-run: answer every joint-angle sample of the device with a muscle estimate.

    edge-run --port /dev/ttyUSB0 [--bundle DIR] [--sensors sensors.json] ...
    edge-run --simulate [--rate 1000]      # no hardware: the device simulator on a pty

Bad input (a missing bundle, a bad sensors file, a port that cannot be used, a
real-time setting that is not permitted) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from firmware_bridge.link import DEFAULT_BAUD

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-run",
        description=(
            "Real-time muscle activation and force estimation: reads JointSample frames "
            "(firmware_bridge/PROTOCOL.md) from a serial port, answers each with an Estimate "
            "frame (activations, forces, joint torques), logs every estimate and prints a "
            "live status line."
        ),
        epilog=(
            "Examples: edge-run --simulate;  edge-run --simulate --rate 1000 --json-status "
            "--duration 10;  edge-run --port /dev/ttyUSB0 --sensors sensors.json --log run.sto. "
            "Stop with Ctrl-C (SIGINT) or SIGTERM: the log is flushed and a summary printed."
        ),
    )
    src = p.add_argument_group("input")
    src.add_argument("--port", help="serial device path or any pyserial URL (socket://, rfc2217://...)")
    src.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                     help=f"bit/s (default {DEFAULT_BAUD})")
    src.add_argument(
        "--simulate",
        action="store_true",
        help="start the device simulator (built-in gait) as a separate process on a "
        "pseudo-terminal and run against it; the default bundle unless --bundle is given",
    )
    src.add_argument("--rate", type=float, default=200.0,
                     help="simulator sample rate in Hz (with --simulate; default 200)")
    src.add_argument("--sensors", type=Path,
                     help="sensors.json mapping channels to joints (default: identity, radians)")
    model = p.add_argument_group("model")
    model.add_argument("--bundle", type=Path,
                       help="bundle directory (default: the bundle shipped in the package)")
    model.add_argument("--backend", default="auto",
                       help="auto | tensorrt | onnxruntime | torch (default auto: the fastest here)")
    model.add_argument("--range-margin", type=float, default=0.1, metavar="RAD",
                       help="angles beyond the subject's joint ranges by more than this (rad) "
                       "are flagged INPUT_OUT_OF_RANGE (default 0.1)")
    out = p.add_argument_group("output")
    out.add_argument("--out-port", help="send estimates to this port instead of --port")
    out.add_argument("--log", type=Path,
                     help="estimate log: .sto (OpenSim storage) or any other suffix for CSV")
    out.add_argument("--duration", type=float, metavar="S",
                     help="stop after S seconds (default: run until Ctrl-C; with --simulate: the "
                     "simulator plays S seconds and edge-run stops when it has answered them)")
    out.add_argument("--json-status", action="store_true",
                     help="status lines as JSON objects on stdout; the last line is the summary")
    rt = p.add_argument_group("real time (Linux)")
    rt.add_argument("--rt-priority", type=int, metavar="N",
                    help="run under SCHED_FIFO at priority N (needs CAP_SYS_NICE or root)")
    rt.add_argument("--cpu", metavar="K[,K...]", help="pin the process to these CPU cores")
    return p


def _parse_cpus(text: str) -> tuple[int, ...]:
    try:
        cpus = tuple(int(k) for k in text.split(","))
    except ValueError:
        raise UsageError(f"--cpu expects core numbers like 2 or 2,3; got {text!r}") from None
    if any(k < 0 for k in cpus):
        raise UsageError(f"--cpu expects non-negative core numbers, got {text!r}")
    return cpus


def _check_args(args: argparse.Namespace) -> None:
    if not args.simulate and not args.port:
        raise UsageError("give --port PORT (a serial device or pyserial URL), or --simulate")
    if args.simulate and args.port:
        raise UsageError("--simulate creates its own port: give either --port or --simulate")
    if args.simulate and not 1.0 <= args.rate <= 5000.0:
        raise UsageError(f"--rate must lie in 1..5000 Hz, got {args.rate}")
    if args.baud <= 0:
        raise UsageError(f"--baud must be a positive number of bit/s, got {args.baud}")
    if args.duration is not None and not args.duration > 0:
        raise UsageError(f"--duration must be a positive number of seconds, got {args.duration}")
    if not args.range_margin >= 0:
        raise UsageError(f"--range-margin must be >= 0 rad, got {args.range_margin}")


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from calib.sensors import SensorError, SensorMap, load_sensors
    from edge.bundle import BundleError, default_bundle_path, load_bundle

    path = args.bundle if args.bundle is not None else default_bundle_path()
    try:
        bundle = load_bundle(path)
    except BundleError as exc:
        raise UsageError(f"bundle: {exc}") from None
    try:
        sensors = load_sensors(args.sensors) if args.sensors else SensorMap.identity()
    except SensorError as exc:
        raise UsageError(f"sensors: {exc}") from None
    return bundle, sensors


def _backend_factory(bundle: Any, log: Any):
    """Selects and warms a backend by name; the fallback chain after a failure."""
    from edge.backends import BackendError, select_backend
    from edge.runtime import FALLBACK_ORDER

    def load(name: str) -> Any:
        backend = select_backend(bundle, name, threads=1)
        backend.warmup(200)
        return backend

    def fallback(failed: str) -> Any:
        order = [n for n in FALLBACK_ORDER if n != failed]
        if failed in FALLBACK_ORDER:
            order = [n for n in FALLBACK_ORDER[FALLBACK_ORDER.index(failed) + 1 :]]
        for name in order:
            try:
                return load(name)
            except BackendError as exc:  # this fallback is unavailable too: try the next
                print(f"fallback backend {name} unavailable: {exc}", file=log, flush=True)
        raise RuntimeError(f"backend {failed} failed and no fallback backend could be loaded")

    return load, fallback


def run(args: argparse.Namespace) -> int:
    from edge.realtime import (
        RealtimeError,
        latency_timer_warning,
        pin_to_cpus,
        set_realtime_priority,
    )

    log = sys.stderr
    _check_args(args)
    t_start = time.monotonic()
    bundle, sensors = _load(args)
    manifest = bundle.manifest
    try:
        if args.cpu:
            print(pin_to_cpus(_parse_cpus(args.cpu)), file=log)
        if args.rt_priority is not None:
            print(set_realtime_priority(args.rt_priority), file=log)
    except RealtimeError as exc:
        raise UsageError(str(exc)) from None

    from edge.backends import BackendError
    from edge.hill import HillModel
    from edge.runtime import EstimatePipeline, Runtime, RuntimeConfig
    from firmware_bridge.link import open_link, usb_serial_latency_timer_ms

    load_backend, fallback = _backend_factory(bundle, log)
    try:
        backend = load_backend(args.backend)
    except (BackendError, ValueError) as exc:
        raise UsageError(f"backend: {exc}") from None
    hill = HillModel(bundle.subject)
    hill.warmup()
    pipeline = EstimatePipeline(
        bundle, backend, hill, sensors, range_margin_rad=args.range_margin,
        fallback=fallback, log=log,
    )

    simulator = None
    port = args.port
    if args.simulate:
        simulator = SimulatedDevice(args.rate, args.duration)
        port = simulator.device_path
    if "://" in port:
        _check_url(port, args.baud, open_link)
    warning = latency_timer_warning(port, usb_serial_latency_timer_ms(port))
    if warning:
        print(warning, file=log)

    spec = pipeline.spec
    print(f"bundle    {bundle.directory} ({manifest.architecture.get('architecture', '?')}, "
          f"window {spec.window} at {spec.rate_hz:g} Hz)", file=log)
    print(f"subject   {bundle.subject.source or 'the bundle subject.json'} "
          f"({bundle.subject.body.mass:.1f} kg, {bundle.subject.body.height:.2f} m, "
          f"{bundle.subject.body.side} leg)", file=log)
    print(f"muscles   {' '.join(manifest.muscles)}", file=log)
    print(f"backend   {backend.name}, 1 inference thread, warmed up", file=log)
    if spec.lookahead:
        print(f"lookahead {spec.lookahead} model samples = {spec.delay_s * 1000:g} ms late: each "
              f"estimate describes the instant {spec.delay_s * 1000:g} ms before the sample it "
              f"answers (more context for the backward GRU)", file=log)
    else:
        print("lookahead 0: each estimate describes the sample it answers (least context)",
              file=log)
    print(f"port      {port} at {args.baud} bit/s"
          + (f", estimates to {args.out_port}" if args.out_port else "")
          + (f" (simulator at {args.rate:g} Hz)" if simulator else ""), file=log)
    print(f"ready in  {time.monotonic() - t_start:.1f} s", file=log, flush=True)

    config = RuntimeConfig(
        port=port, baud=args.baud, out_port=args.out_port, log_path=args.log,
        duration_s=simulator.runtime_limit_s if simulator else args.duration,
        json_status=args.json_status,
    )
    runtime = Runtime(
        config, pipeline, open_link, tuple(manifest.muscles), tuple(bundle.subject.coordinates),
        log=log,
    )

    def stop(signum: int, frame: Any) -> None:
        if simulator is not None and not simulator.ending:
            simulator.end_stream(runtime)  # its last samples are answered, then the loop ends
        else:
            runtime.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if simulator is not None:
        simulator.stop_runtime_when_done(runtime)
    try:
        summary = runtime.run()
    finally:
        if simulator is not None:
            summary_of_device = simulator.stop()
    if simulator is not None:
        summary["simulator"] = summary_of_device
    _print_summary(summary, args.json_status)
    return 0


class SimulatedDevice:
    """firmware_bridge's device simulator in its own process, on a pseudo-terminal.

    It plays the built-in normative gait at ``rate_hz`` once edge-run has said Hello,
    for ``duration_s`` (None: until stopped); edge-run stops when the simulator has
    written its last sample and every sample is answered (``runtime_limit_s``, None
    for an endless run, is only a safety net should the simulator hang). The
    simulator keeps figures only, no per-sample records.
    """

    def __init__(self, rate_hz: float, duration_s: float | None = None) -> None:
        from firmware_bridge.simulator import SimulatorConfig, SimulatorProcess

        self.runtime_limit_s = None if duration_s is None else duration_s + 60.0
        config = SimulatorConfig(rate_hz=rate_hz, duration_s=duration_s, wait_for_host_s=60.0,
                                 drain_s=0.5, keep_records=0)
        self._process = SimulatorProcess(config)
        try:
            self.device_path = self._process.start()
        except (OSError, TimeoutError, EOFError) as exc:
            raise UsageError(f"--simulate: the device simulator did not start: {exc}") from None
        self._lock = threading.Lock()  # one reader of the simulator's messages at a time
        self.ending = False

    def _join(self, timeout: float | None) -> Any:
        with self._lock:
            return self._process.join(timeout)

    def stop_runtime_when_done(self, runtime: Any) -> None:
        """Finish ``runtime`` (answer what has arrived, then stop) when the simulator has
        written its last sample; stop it at once should the simulator fail."""

        def watch() -> None:
            try:
                with self._lock:
                    self._process.wait_streamed(None)
            except (RuntimeError, TimeoutError, EOFError, OSError):
                runtime.stop()
                return
            runtime.finish()

        threading.Thread(target=watch, name="simulator-watch", daemon=True).start()

    def end_stream(self, runtime: Any, grace_s: float = 2.0) -> None:
        """Ask the simulator to stop sending (``stop_runtime_when_done`` then finishes
        ``runtime`` once its last samples are answered); stop ``runtime`` anyway after
        ``grace_s`` should that not happen. Safe from a signal handler."""
        self.ending = True
        self._process.stop()
        timer = threading.Timer(grace_s, runtime.stop)
        timer.daemon = True
        timer.start()

    def stop(self) -> dict:
        """Stop the simulator; its figures (round trip as the device saw it)."""
        self._process.stop()
        try:
            report = self._join(10.0)
        except (RuntimeError, TimeoutError, EOFError, OSError) as exc:
            return {"error": str(exc)}
        finally:
            self._process.close()
        return {
            "samples_sent": report.samples_sent,
            "estimates_received": report.estimates_received,
            "answered": report.answered,
            "skipped_reported": report.skipped_reported,
            "lost": report.lost,
            "late": report.late,
            "overruns": report.overruns,
            "round_trip_ms": {"p50": report.latency_ms_p50, "p99": report.latency_ms_p99,
                              "p999": report.latency_ms_p999},
        }


def _check_url(url: str, baud: int, open_link: Any) -> None:
    """A pyserial URL must open now (a device path may appear later: edge-run waits for it)."""
    from firmware_bridge.link import LinkError

    try:
        open_link(url, baud, 0.01).close()
    except LinkError as exc:
        raise UsageError(str(exc)) from None


def _print_summary(summary: dict, json_lines: bool) -> None:
    from edge.status import format_summary

    if json_lines:
        print(json.dumps(summary), flush=True)
        return
    print(format_summary(summary), flush=True)
    device = summary.get("simulator")
    if device and "error" in device:
        print(f"simulator: {device['error']}", flush=True)
    elif device:
        rt = device["round_trip_ms"]
        print(f"simulator: sent {device['samples_sent']}, estimates received "
              f"{device['estimates_received']}, lost {device['lost']}, late {device['late']}; "
              f"round trip ms p50 {rt['p50']:.3f} p99 {rt['p99']:.3f} p99.9 {rt['p999']:.3f}",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        print(f"edge-run: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"edge-run: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RuntimeError as exc:  # no backend left after failures: the log is closed by now
        print(f"edge-run: stopped: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while starting, before the loop's handler is set
        print("edge-run: interrupted while starting", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
