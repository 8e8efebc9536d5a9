"""Time the Python codec on the runtime's per-sample path: decode a JointSample, encode an Estimate.

Prints microseconds per operation (best of several repeats) for the message sizes
the runtime uses (3 channels in, M muscles out).
"""

from __future__ import annotations

import argparse
import sys
import timeit

from firmware_bridge.codec import Estimate, JointSample, StreamDecoder, encode


def measure(muscles: int, number: int, repeat: int) -> dict[str, float]:
    sample = JointSample(
        seq=123456, timestamp_us=987654321, values=(0.31, -0.52, 0.07), valid_mask=0b111
    )
    estimate = Estimate(
        seq=77,
        timestamp_us=5,
        sample_seq=123456,
        sample_timestamp_us=987654321,
        activations=tuple(0.01 * (i + 1) for i in range(muscles)),
        forces=tuple(100.0 + 17.3 * i for i in range(muscles)),
        torques=(12.5, -30.25, 4.0),
        status=0,
        skipped=0,
        latency_us=850,
    )
    sample_wire, estimate_wire = encode(sample), encode(estimate)
    decoder = StreamDecoder()
    cases = {
        "encode JointSample(3)": lambda: encode(sample),
        "decode JointSample(3)": lambda: decoder.feed(sample_wire),
        f"encode Estimate({muscles})": lambda: encode(estimate),
        f"decode Estimate({muscles})": lambda: decoder.feed(estimate_wire),
    }
    return {
        name: min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6
        for name, fn in cases.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--muscles", type=int, default=10, help="muscles per Estimate")
    parser.add_argument("--number", type=int, default=5000, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=5, help="repeats (best is reported)")
    args = parser.parse_args(argv)
    if not 0 <= args.muscles <= 64 or args.number < 1 or args.repeat < 1:
        print("error: need 0 <= --muscles <= 64, --number >= 1, --repeat >= 1", file=sys.stderr)
        return 2
    for name, us in measure(args.muscles, args.number, args.repeat).items():
        print(f"{name:24s} {us:7.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
