"""edge-bench: edge-run measured on the machine it runs on (``edge.bench.cli``).

Modules: ``timing`` (timing calls, summaries), ``stages`` (each stage alone),
``end_to_end`` (the loop through the serial path; the ramp), ``reference`` (eager
PyTorch and static optimisation, the rows a user compares against), ``report``
(table, verdict, histogram, JSON).
"""

from edge.bench.cli import main

__all__ = ["main"]
