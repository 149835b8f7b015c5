"""Edge benchmark: ``python benchmarks/bench_edge.py --streams 16 --seconds 20 [--json]``.

Beyond ``shaobing bench edge``: ``--no-variants``, ``--variant-seconds S``, ``--sampling``,
``--ours RUNTIME:PRECISION``.
"""

from __future__ import annotations

import argparse
import sys

from shaobing_tools.bench_edge import bench_edge_command


def main() -> int:
    """Parse arguments like ``shaobing bench edge`` and run it."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--streams", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-ultralytics", action="store_true")
    p.add_argument(
        "--no-variants",
        dest="variants",
        action="store_false",
        default=None,
        help="skip the runtime × precision side by side",
    )
    p.add_argument(
        "--ours",
        default=None,
        metavar="RUNTIME:PRECISION",
        help="the main run's runtime and precision, e.g. onnxruntime:fp32 (default onnxruntime:int8)",
    )
    p.add_argument("--variant-seconds", type=float, default=None, help="seconds per variant")
    p.add_argument(
        "--sampling",
        action="store_true",
        default=None,
        help="add each sampling saving alone (recall and detector calls)",
    )
    return bench_edge_command(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
