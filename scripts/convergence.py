"""When train-fit's convergence rule stops on the shared subject01 trial, how long that takes,
and what the stopped network is worth against one trained to the cap.

    python scripts/convergence.py [--data ../shared/data/opensim-gait2392] [--out convergence/]

Recipe (paper_experiments' steps): subject01 with every right-leg muscle crossing the
three joints (43), our static optimisation, then two label-free runs with train-fit's
defaults (80/20 split by time, cap 1000 epochs), OpenSim's activations as --labels for
metrics only:
1. "rule": the default convergence rule (validation physics loss improving by less than
   1 % over 150 epochs);
2. "cap": --patience 0, all 1000 epochs.
Both are scored over 0.55-2.5 s on the paper's ten muscles against our static
optimisation and OpenSim's. The cosine schedule depends on the cap only, so the two runs
are the same run up to the rule's stop, and the cap run's history says where other
settings of the rule (patience, relative improvement) would have stopped.

Needs the ``opensim`` package (subject import). Trains for tens of minutes on one core
(run it under the heavy lock; timing: docs/measurements.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paper_experiments as recipe  # the shared steps of the paper recipe

from train.fit_config import TrainingConfig
from train.training_loop import converged

SETTINGS = ((100, 0.01), (150, 0.01), (200, 0.01), (150, 0.02), (200, 0.02))
"""(patience, min_improvement) pairs read off the cap run's history."""


def stop_epoch(history: list[dict], patience: int, min_improvement: float) -> int | None:
    config = TrainingConfig(patience=patience, min_improvement=min_improvement)
    return next((n for n in range(1, len(history) + 1) if converged(history[:n], config)), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=recipe.DEFAULT_DATA, help="opensim-gait2392")
    parser.add_argument("--out", type=Path, default=Path("convergence"), help="output folder")
    args = parser.parse_args(argv)
    if recipe.missing_so_results("convergence", args.data):
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    subject = recipe.build_subject("all", "all", args.data, args.out)
    prefix = recipe.run_static_optimization("all", subject, args.data, args.out)
    default = TrainingConfig()
    rows = {}
    for name, patience in (("rule", default.patience), ("cap", 0)):
        run = recipe.train(
            args.out / name, subject, args.data, default.epochs, ["--patience", str(patience)],
            validation_fraction=default.validation_fraction,
        )  # fmt: skip
        own, opensim = recipe.score_both(run, args.data, prefix, args.out / name, own_forces=True)
        metrics = json.loads((run / "metrics.json").read_text())
        rows[name] = {
            "epochs": metrics["epochs"],
            "training_seconds": metrics["training_seconds"],
            "stopped_by": metrics["stopped_by"],
            "r2_vs_own_so": own["activation"]["mean"]["r2"],
            "r2_vs_opensim_activation": opensim["activation"]["mean"]["r2"],
            "r2_vs_opensim_force": opensim["force"]["mean"]["r2"],
        }
    history = json.loads((args.out / "cap" / "history.json").read_text())
    rows["rule_settings"] = {
        f"patience {p}, {100 * m:g} %": stop_epoch(history, p, m) for p, m in SETTINGS
    }
    (args.out / "convergence.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n=== convergence on subject01 (43 muscles; ten scored, 0.55-2.5 s)")
    print("run   epochs  seconds  vs train-so  vs OpenSim act.  vs OpenSim force")
    for name in ("rule", "cap"):
        r = rows[name]
        print(
            f"{name:<5} {r['epochs']:6d} {r['training_seconds']:8.0f} {r['r2_vs_own_so']:12.3f} "
            f"{r['r2_vs_opensim_activation']:16.3f} {r['r2_vs_opensim_force']:17.3f}"
        )
    print("the rule's stop with other settings, from the cap run's history:")
    for setting, epoch in rows["rule_settings"].items():
        print(f"  {setting}: {epoch if epoch is not None else 'never (ran to the cap)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
