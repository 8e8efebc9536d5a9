"""Regenerate calib's shipped subjects from OpenSim's generic gait2392 model.

Writes ``calib/data/generic_gait2392.json`` (every right-leg muscle that
crosses the hip, knee or ankle, over the five coordinates; the base of
``calib-subject --height --mass``) and ``calib/data/default_subject.json`` (the
same 43 muscles: ``calib.default_subject()``), both at the generic model's own
size, and prints the fit-error table and how long OpenSim and the fit took.

Usage: python scripts/build_generic_subject.py [path/to/gait2392_thelen2003muscle.osim]
(default: ../shared/data/opensim-gait2392/gait2392_thelen2003muscle.osim)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from calib.osim_import import format_report, import_osim
from calib.scaling import GENERIC_HEIGHT_M, GENERIC_SUBJECT_PATH
from calib.subject import DEFAULT_SUBJECT_PATH, SubjectError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = (
    REPO.parent / "shared" / "data" / "opensim-gait2392" / "gait2392_thelen2003muscle.osim"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args()
    start = time.monotonic()
    try:
        result = import_osim(args.model, muscles="all", height=GENERIC_HEIGHT_M)
    except SubjectError as exc:
        print(f"build_generic_subject: {exc}", file=sys.stderr)
        return 1
    generic = dataclasses.replace(
        result.subject, source=f"generic gait2392 ({args.model.name}), height {GENERIC_HEIGHT_M} m"
    )
    elapsed = time.monotonic() - start
    generic.save(GENERIC_SUBJECT_PATH)
    dataclasses.replace(
        generic, source=f"calib default: generic gait2392 ({args.model.name}), all leg muscles"
    ).save(DEFAULT_SUBJECT_PATH)
    print(format_report(result.reports))
    print(f"OpenSim evaluation and fitting took {elapsed:.0f} s")
    for path in (GENERIC_SUBJECT_PATH, DEFAULT_SUBJECT_PATH):
        size = path.stat().st_size / 1024
        print(f"wrote {path.relative_to(REPO)} ({len(generic.muscles)} muscles, {size:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
