"""The knowledge base's commands and their cluster side: ``energysched kb show`` and
``energysched bench run``.

* :mod:`.cli` — the two commands (parsers and handlers; heavy imports inside them);
* :mod:`.bench_job` — the benchmark Job for one node (a pure manifest builder);
* :mod:`.fill` — one Job per Ready node, their logs, results into profiles, apply;
* :mod:`.convert` — bench result documents into EnergyProfile manifests
  (``python -m energysched.kbtools.convert``).

The values themselves (profiles, their validation, the table) are in
:mod:`energysched.kb`, which does no I/O of this kind.
"""
