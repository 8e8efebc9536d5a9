"""Accuracy against delay for the lookahead N on the subject01 walking trial.

The BiGRU looks both ways inside its window, so the newest sample has the least
future context. A model trained with ``--lookahead N`` predicts the sample N
steps before the window's end: more context, answered N / rate later. This
script trains label-free models with N = 0, 2, 5 (``--lookaheads``) on
subject01 with every right-leg muscle (``--muscles all``, where a sagittal
model can approach OpenSim's static optimisation) and prints, per N, the delay
and the mean R^2 of the ten paper muscles over 0.55-2.5 s against our own
static optimisation (``train-so``) and against OpenSim's.

    python scripts/lookahead_tradeoff.py [--data ../shared/data/opensim-gait2392]
        [--out lookahead/] [--epochs 1000] [--lookaheads 0,2,5]

The figures it printed, and why the default is N = 0: docs/measurements.md.

Runs that already finished in ``--out`` (e.g. ``paper_experiments.py``'s
``pi_all`` copied as ``lookahead_0``) are reused. Needs the ``opensim``
package (the subject import).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paper_experiments as recipe  # the shared steps of the paper recipe

RATE_HZ = 100.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=recipe.DEFAULT_DATA, help="opensim-gait2392")
    parser.add_argument("--out", type=Path, default=Path("lookahead"), help="output folder")
    parser.add_argument(
        "--epochs", type=int, default=1000, help="training epochs (default 1000, see the doc)"
    )
    parser.add_argument("--lookaheads", default="0,2,5", help="values of N (default 0,2,5)")
    args = parser.parse_args(argv)
    if recipe.missing_so_results("lookahead_tradeoff", args.data):
        return 2
    try:
        lookaheads = [int(n) for n in args.lookaheads.split(",")]
    except ValueError:
        print(f"lookahead_tradeoff: --lookaheads must be integers, got {args.lookaheads!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    subject = recipe.build_subject("all", "all", args.data, args.out)
    prefix = recipe.run_static_optimization("all", subject, args.data, args.out)
    rows = []
    for n in lookaheads:
        name = "pi_all" if n == 0 else f"lookahead_{n}"  # N = 0 is paper_experiments' run
        run = recipe.train(
            args.out / name, subject, args.data, args.epochs, ["--lookahead", str(n)]
        )
        own, opensim = recipe.score_both(
            run, args.data, prefix, args.out / f"lookahead_{n}", own_forces=False
        )
        rows.append(
            {
                "lookahead": n,
                "delay_ms": 1000.0 * n / RATE_HZ,
                "r2_vs_own_so": own["activation"]["mean"]["r2"],
                "r2_vs_opensim_activation": opensim["activation"]["mean"]["r2"],
                "r2_vs_opensim_force": opensim["force"]["mean"]["r2"],
            }
        )
    (args.out / "lookahead_tradeoff.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n=== lookahead trade-off: mean R² of the ten paper muscles, 0.55-2.5 s")
    print(" N  delay   vs train-so   vs OpenSim act.   vs OpenSim force")
    for r in rows:
        print(
            f"{r['lookahead']:2d} {r['delay_ms']:5.0f} ms {r['r2_vs_own_so']:10.3f} "
            f"{r['r2_vs_opensim_activation']:14.3f} {r['r2_vs_opensim_force']:16.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
