"""A simulator run against a minimal host: the wire's own round trip, without any model.

Starts bridge-sim's DeviceSimulator in its own process on a new pseudo-terminal, opens
the tty as edge-run would, answers every JointSample at once with a constant Estimate
of M muscles, and prints the simulator's report: what the protocol, the pty and the
Python codec cost before any inference.
"""

from __future__ import annotations

import argparse
import sys
import threading

from firmware_bridge import protocol as P
from firmware_bridge.codec import Estimate, Hello, JointSample, StreamDecoder, encode
from firmware_bridge.link import LinkError, open_link
from firmware_bridge.simulator import SimulatorConfig, SimulatorConfigError, SimulatorProcess


def echo_host(path: str, muscles: int, done: threading.Event) -> None:
    port = open_link(path, timeout=0.002)
    names = tuple(f"m{i}" for i in range(muscles))
    port.write(
        encode(
            Hello(
                seq=0,
                timestamp_us=0,
                role=P.ROLE_HOST,
                sample_rate_hz=0.0,
                muscle_names=names,
                reply_requested=1,
            )
        )
    )
    decoder = StreamDecoder()
    seq = 0
    while not done.is_set():
        for message in decoder.feed(port.read(4096)):
            if isinstance(message, JointSample):
                port.write(
                    encode(
                        Estimate(
                            seq=seq,
                            timestamp_us=0,
                            sample_seq=message.seq,
                            sample_timestamp_us=message.timestamp_us,
                            activations=(0.1,) * muscles,
                            forces=(100.0,) * muscles,
                            torques=(0.0, 0.0, 0.0),
                        )
                    )
                )
                seq += 1
    port.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000.0, help="samples per second")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds")
    parser.add_argument("--muscles", type=int, default=10, help="muscles per Estimate")
    parser.add_argument("--garbage", type=float, default=0.0, help="garbage probability")
    parser.add_argument("--drop", type=float, default=0.0, help="drop probability")
    args = parser.parse_args(argv)
    try:
        config = SimulatorConfig(
            rate_hz=args.rate,
            duration_s=args.duration,
            garbage_probability=args.garbage,
            drop_probability=args.drop,
            wait_for_host_s=30.0,
        )
        with SimulatorProcess(config) as process:
            path = process.start()
            done = threading.Event()
            host = threading.Thread(target=echo_host, args=(path, args.muscles, done), daemon=True)
            host.start()
            report = process.join(timeout=args.duration + 60)
            done.set()
            host.join(5)
    except (SimulatorConfigError, LinkError, TimeoutError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
