"""Write (or, with --check, verify) the generated blocks of PROTOCOL.md and the C header.

Both are generated from the table in firmware_bridge/protocol.py. Run after
changing that table; CI's tests fail while either file is stale.
"""

from __future__ import annotations

import argparse
import sys

from firmware_bridge.artefacts import expected_artefacts, stale_artefacts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and name the files that are stale",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_artefacts()
            for path in stale:
                print(
                    f"stale: {path} (run scripts/generate_protocol_artefacts.py)", file=sys.stderr
                )
            return 1 if stale else 0
        for path, text in expected_artefacts().items():
            if path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                print(f"updated {path}")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
