"""``python -m energysched_mlworkflow [STAGE|all]``: run stages, print their result lines.

Without a stage, all three run end to end (in a temporary directory unless
``--data`` is given). ``--scale`` multiplies every stage's default amount of
work (the full pipeline: 60 Miter, 3,000 steps, 2,000,000 samples);
``--work`` sets one stage's amount in its unit.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from energysched_mlworkflow.stages import STAGE_INFO, STAGES, StageInputError, run_stage


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m energysched_mlworkflow", description=__doc__)
    p.add_argument("stage", nargs="?", default="all", choices=[*STAGES, "all"])
    p.add_argument(
        "--data",
        type=Path,
        default=os.environ.get("ENERGYSCHED_WORKFLOW_DATA"),
        help="directory the stages share (env ENERGYSCHED_WORKFLOW_DATA; /data in the image)",
    )
    p.add_argument("--work", type=float, help="amount of work of a single stage, in its unit")
    p.add_argument("--scale", type=float, default=1.0, help="factor on the default work")
    p.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    args = p.parse_args(argv)
    if args.work is not None and args.stage == "all":
        p.error("--work applies to one stage; use --scale for all")
    if args.scale <= 0 or (args.work is not None and args.work <= 0):
        p.error("the amount of work must be positive")
    names = STAGES if args.stage == "all" else (args.stage,)
    with tempfile.TemporaryDirectory(prefix="mlworkflow-") as tmp:
        data = args.data or Path(tmp)
        if args.data is None and args.stage != "all":
            p.error("a single stage needs --data (the directory the stages share)")
        for name in names:
            work = (
                args.work if args.work is not None else STAGE_INFO[name].default_work * args.scale
            )
            try:
                result = run_stage(name, data, work, backend=args.backend)
            except StageInputError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                return 1
            except OSError as exc:  # e.g. /data not mounted on a read-only root
                print(
                    f"{name}: cannot write to {data} ({exc.strerror}): mount a writable "
                    "volume there (a ReadWriteMany claim on a cluster, docker run -v DIR:/data)",
                    file=sys.stderr,
                )
                return 1
            print(result.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
