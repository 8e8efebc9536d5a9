"""Offline prediction time of a 10 s recording (train-predict's path), optionally with
another process keeping a core busy.

    python scripts/bench_predict.py [--bundle DIR] [--seconds 10] [--busy]
        [--data ../shared/data/opensim-gait2392]

The recording is the shared walking trial's IK (0.5-4.0 s) stretched in time to
--seconds (a slower walk: the network's cost does not depend on the motion). It is
predicted as ``train-predict`` predicts: ``train.predict.predict_files`` with the
bundle (default: the package's default bundle) through ONNX Runtime and through the
exported program in PyTorch, one intra-op thread each, and, for comparison, the
exported program with two threads, as train-predict ran it before (torch's default on
this 2-core machine), on the first --old-windows windows only (it takes seconds per
window under load). ``--busy`` starts ``python3 -c 'while True: pass'`` for the
duration, the load under which two spinning threads collapse. Prints seconds in all and
ms per window. A benchmark, not a test: figures move with machine load (state it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge.bundle import default_bundle_path
from train.opensim_io import read_storage, write_storage
from train.predict import load_predictor, predict, predict_files

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "opensim-gait2392"


def stretched_ik(source: Path, seconds: float, out: Path) -> Path:
    """``source`` with its time axis stretched to last ``seconds``, same start."""
    ik = read_storage(source)
    time_s = ik.time[0] + (ik.time - ik.time[0]) * seconds / (ik.time[-1] - ik.time[0])
    return write_storage(out, time_s, ik.columns, ik.data, in_degrees=ik.in_degrees)


def measure(bundle: Path, ik: Path, backend: str, threads: int, windows: int | None) -> str:
    predictor = load_predictor(bundle, backend, threads)
    if windows is None:
        started = time.perf_counter()
        prediction = predict_files(predictor, ik)
        total = time.perf_counter() - started
        n = prediction.time.size
        return (
            f"{backend:<12} {threads} thread(s): {n} windows, {total:6.2f} s in all "
            f"(network {prediction.inference_s:6.2f} s, {1e3 * prediction.inference_s / n:7.3f} "
            "ms per window)"
        )
    from train.predict import ik_on_grid

    time_s, q, _ = ik_on_grid(ik, predictor.rate_hz)
    part = predict(predictor, time_s[: windows + predictor.history - 1],
                   q[: windows + predictor.history - 1])  # fmt: skip
    return (
        f"{backend:<12} {threads} thread(s): first {part.time.size} windows only, network "
        f"{part.inference_s:6.2f} s, {1e3 * part.inference_s / part.time.size:7.3f} ms per window"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=None, help="bundle (default: the package's)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="opensim-gait2392 folder")
    parser.add_argument("--seconds", type=float, default=10.0, help="recording length (s)")
    parser.add_argument("--busy", action="store_true", help="keep another core busy meanwhile")
    parser.add_argument(
        "--old-windows", type=int, default=40, help="windows the two-thread comparison runs"
    )
    args = parser.parse_args(argv)
    bundle = args.bundle or default_bundle_path()
    busy = None
    with tempfile.TemporaryDirectory() as tmp:
        ik = stretched_ik(args.data / "subject01_walk1_ik.mot", args.seconds, Path(tmp) / "ik.mot")
        if args.busy:
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            print(f"{args.seconds:g} s recording, bundle {bundle}, "
                  f"{'another core busy' if busy else 'no extra load'}")  # fmt: skip
            for backend, threads, windows in (("onnxruntime", 1, None), ("torch", 1, None),
                                              ("torch", 2, args.old_windows)):  # fmt: skip
                print(measure(bundle, ik, backend, threads, windows), flush=True)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
