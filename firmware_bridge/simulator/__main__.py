"""``python3 -m firmware_bridge.simulator``: the bridge-sim command."""

import sys

from firmware_bridge.simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
