"""``python -m energysched_mlworkflow STAGE``: run one stage and print its wall time."""

from __future__ import annotations

import sys

from energysched_mlworkflow.stages import STAGES, run


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in STAGES:
        print(f"usage: python -m energysched_mlworkflow {{{','.join(STAGES)}}}", file=sys.stderr)
        return 2
    print(f"{args[0]}: {run(args[0]):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
