"""``python3 -m firmware_bridge.simulator``: the bridge-sim command."""

import sys

from firmware_bridge.simulator.cli import main

sys.exit(main())
