"""Generate a scenario's truth.yaml: the profiles perturbed with seeded noise.

The scheduler is told the profiles; the simulator runs the truth. Drawing the
truth from the profiles with noise of the size the profiles admit ("up to a
factor of about 2 either way") keeps the scheduler's knowledge close to, but
never equal to, what it is judged by::

    python -m energysched_lab.experiment.truth kb/scenarios/thesis --seed 13 \
        > kb/scenarios/thesis/truth.yaml

Per node class: idle x exp(N(0, 0.10)); per workload type performance x
exp(N(0, 0.30)) and dynamic power (powerWatts - idle) x exp(N(0, 0.20)).
Resources (the sharing model): training on a node with a GPU occupies the GPU,
other training and inference all cores, sequential one core.

Power states (a profile with ``spec.powerStates``), drawn from their own seeded stream so
that adding them left every other figure unchanged: sleep power, the time to fall asleep,
the wake's median duration and its energy each x exp(N(0, 0.20)); each wake's duration
varies by exp(N(0, 0.30)) around the median (resume has a long tail); a wake fails with
probability 0.02 for a node that suspends (Wake-on-LAN: the NIC setting reset, the packet
lost) and 0.01 for one that halts (a smart plug's relay). These are priors from the
published failure modes, not measured rates.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path
from typing import Any

import yaml

from energysched.core.quantity import parse_quantity
from energysched.kb.io import load_profiles
from energysched_lab.cluster.nodes import NodeClass, load_node_classes

SIGMA_PERFORMANCE = 0.30
SIGMA_DYNAMIC_POWER = 0.20
SIGMA_IDLE = 0.10
SIGMA_POWER_STATES = 0.20
WAKE_JITTER = 0.30
WAKE_FAILURE_PROBABILITY = {"suspend": 0.02, "halt": 0.01}


def _resource(wt: str, cls: NodeClass) -> tuple[str, float]:
    if wt == "training" and float(parse_quantity(cls.allocatable.get("nvidia.com/gpu", "0"))) > 0:
        return "gpu", 1.0
    if wt == "sequential":
        cores = float(parse_quantity(cls.allocatable.get("cpu", "1")))
        return "cpu", round(1.0 / max(1.0, cores), 4)
    return "cpu", 1.0


def generate(
    nodes_dir: Path, profiles_dir: Path, seed: int, run_noise: float = 0.05
) -> dict[str, Any]:
    kb = load_profiles(profiles_dir).knowledge_base()
    rng = random.Random(seed)
    power_rng = random.Random(f"{seed}:power-states")
    nodes: dict[str, Any] = {}
    for cls in load_node_classes(nodes_dir):
        res = kb.resolve({**cls.labels, "kubernetes.io/hostname": cls.name})
        if res is None:
            continue
        p = res.profile
        idle = p.idle_power_watts * math.exp(rng.gauss(0, SIGMA_IDLE))
        wls: dict[str, Any] = {}
        for wt, fig in sorted(p.workloads.items()):
            resource, demand = _resource(wt, cls)
            dyn = (fig.power_watts - p.idle_power_watts) * math.exp(
                rng.gauss(0, SIGMA_DYNAMIC_POWER)
            )
            perf = fig.performance * math.exp(rng.gauss(0, SIGMA_PERFORMANCE))
            wls[wt] = {
                "performance": float(f"{perf:.4g}"),
                "powerWatts": round(idle + dyn, 2),
                "resource": resource,
                "demand": demand,
            }
        nodes[cls.name] = {"idlePowerWatts": round(idle, 2), "workloads": wls}
        ps = p.power_states
        if ps is not None:

            def noisy(value: float) -> float:
                return value * math.exp(power_rng.gauss(0, SIGMA_POWER_STATES))

            sleep = min(noisy(ps.sleep_watts), 0.5 * idle)
            nodes[cls.name]["powerStates"] = {
                "sleepWatts": float(f"{sleep:.3g}"),
                "suspendSeconds": round(noisy(ps.suspend_seconds), 2),
                "wakeSeconds": round(noisy(ps.wake_seconds), 2),
                "wakeJoules": round(noisy(ps.wake_joules), 1),
                "wakeFailureProbability": WAKE_FAILURE_PROBABILITY[ps.sleep_kind],
                "wakeJitter": WAKE_JITTER,
            }
    return {
        "seed": seed,
        "generatedFrom": str(profiles_dir),
        "noise": {
            "performance": SIGMA_PERFORMANCE,
            "dynamicPower": SIGMA_DYNAMIC_POWER,
            "idle": SIGMA_IDLE,
        },
        "runNoise": run_noise,
        "nodes": nodes,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", type=Path, help="scenario directory (its nodes/ and profiles/)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--run-noise", type=float, default=0.05)
    args = ap.parse_args(argv)
    meta_file = args.scenario / "scenario.yaml"
    meta = yaml.safe_load(meta_file.read_text()) if meta_file.exists() else {}
    nodes_dir = (args.scenario / meta.get("nodes", "nodes")).resolve()
    profiles_dir = (args.scenario / meta.get("profiles", "profiles")).resolve()
    doc = generate(nodes_dir, profiles_dir, args.seed, args.run_noise)
    doc["generatedFrom"] = meta.get("profiles", "profiles")
    sys.stdout.write(
        "# The ground truth the simulator runs (the scheduler never sees it). Generated by\n"
        f"#   python -m energysched_lab.experiment.truth {args.scenario} --seed {args.seed}\n"
        "# from the scenario's profiles with seeded noise; format: kb/scenarios/README.md.\n"
    )
    sys.stdout.write(yaml.safe_dump(doc, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
