"""Wake a simulated (KWOK) node: post a fresh Ready heartbeat, as a kubelet does on start.

The ``command`` power-control method's wake hook for KWOK nodes in tests::

    python -m energysched_lab.kwok_power wake --kubeconfig K --node N

KWOK refreshes node conditions only every ten minutes in the local cluster, so a KWOK node
never proves by itself that it came back; this posts Ready=True with ``lastHeartbeatTime``
now (a strategic merge on the conditions, by type), which is what the power manager waits
for. ``sleep`` does nothing (a KWOK node has no machine to stop).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Sequence

from energysched.kube.client import KubeClient, api_path
from energysched.kube.config import load_kubeconfig


async def wake(kubeconfig: str, node: str) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "simulated node is back",
        "lastHeartbeatTime": now,
    }
    async with KubeClient(load_kubeconfig(kubeconfig), qps=0) as kube:
        await kube.patch(
            api_path("v1", "nodes", name=node, subresource="status"),
            {"status": {"conditions": [condition]}},
            "strategic",
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m energysched_lab.kwok_power")
    parser.add_argument("step", choices=("sleep", "wake"))
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", required=True)
    args = parser.parse_args(argv)
    if args.step == "wake":
        asyncio.run(wake(args.kubeconfig, args.node))
    return 0


if __name__ == "__main__":
    sys.exit(main())
