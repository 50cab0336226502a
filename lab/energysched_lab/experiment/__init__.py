"""The experiment: kube-scheduler vs energysched, judged by a ground truth they do not know.

Modules, in the order data flows:

- :mod:`.scenario`   a scenario directory: nodes, profiles, truth, workload (validated)
- :mod:`.truth`      generates a truth.yaml from profiles with seeded noise
- :mod:`.jobs`       a workload plus a seed gives the run's concrete jobs
- :mod:`.engine`     the truth in motion: durations with the sharing model, node power
- :mod:`.simulator`  the engine on the local KWOK cluster: binds in, completions and power out
- :mod:`.accounting` power traces and their integrals (energy as a plug measures it)
- :mod:`.optimum`    the offline optimum (exact by enumeration, or a MILP lower bound)
- :mod:`.results`    CSV rows and trace files
- :mod:`.report`     report.md sections and PNG plots
- :mod:`.runner`     runs and sweeps; :mod:`.commands` the command line
- :mod:`.realcluster` the same on a real cluster, named explicitly
"""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    from energysched_lab.experiment.commands import add_parser as add

    add(sub)
