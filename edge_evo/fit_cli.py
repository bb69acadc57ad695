"""``edge-evo fit`` and ``edge-evo targets`` command lines (for edge_evo/cli.py's registry)."""
from __future__ import annotations

import json
import sys

from .fit import EVOLVERS, fit_report, targets_table


def add_fit_arguments(p) -> None:
    p.add_argument("model", help="saved model (MODEL.json/.npz or run folder) or dims like 784-64-10")
    p.add_argument("--target", required=True, help="device description (see 'edge-evo targets')")
    p.add_argument("--evolve", choices=EVOLVERS, help="also budget on-device evolution with this engine")
    p.add_argument("--population", type=int, help="population P (GENREG default 200, OpenES 64)")
    p.add_argument("--survivors", type=int, help="GENREG survivors k (default 2)")
    p.add_argument("--batch", type=int, help="GENREG batch B (default 200)")
    p.add_argument("--stack-bytes", type=int, help="stack reserve (default 512 inference, 1024 evolution)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")


def cli_fit(args) -> int:
    """0 when it fits, 1 (with the numbers and what to shrink) when it does not."""
    opts = {k: getattr(args, k) for k in ("population", "survivors", "batch", "stack_bytes")
            if getattr(args, k) is not None}
    r = fit_report(args.model, args.target, args.evolve, **opts)
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        print(r["message"], file=sys.stdout if r["fits"] else sys.stderr)
    return 0 if r["fits"] else 1


def cli_targets(args) -> int:
    for line in targets_table():
        print(line)
    return 0


__all__ = ["add_fit_arguments", "cli_fit", "cli_targets"]
