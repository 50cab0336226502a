"""``make perf``: how fast energysched drains a backlog of pods, next to kube-scheduler.

A benchmark, not a test: nothing here asserts on time. One local cluster (real
etcd, kube-apiserver, kube-controller-manager; KWOK nodes) is started with
``--nodes N`` generated nodes. Then, for each client limit (``--limits``, default
kube-scheduler's QPS 50 / burst 100 and an uncapped 5000 / 10000) and each
scheduler (kube-scheduler, then energysched once per ``--modes``), one run on a
fresh namespace, one after the other, the scheduler started for the run and
stopped after it:

* **backlog** (the default, ``--mode backlog``): all ``--pods`` pods are created
  while the scheduler under test is not running; then it is started and drains
  the backlog. The pod creator cannot set the pace.
* **stream** (``--mode stream``): the scheduler runs while the pods are created.

A separate unthrottled client creates the pods (``--concurrency`` in flight) and
records when each create call returned; a watch on the namespace records when
each pod was first seen with a ``nodeName``. From that, per run:

* pods/s from the first bind to the last (the drain rate), and scheduler_perf's
  figure: per-second samples of how many pods are bound, as average / p50 / p90;
* seconds from the scheduler's start to its first and its last bind;
* the creator's own rate, and what set the pace (``checks``: the creator, the
  client limit, a saturated machine, or the scheduler);
* the scheduler's CPU seconds (whole run, and first to last bind) and peak RSS;
* per-pod decision time, algorithm only (energysched's
  ``energysched_scheduling_algorithm_duration_seconds``, kube-scheduler's
  ``scheduler_scheduling_algorithm_duration_seconds``) and per whole attempt.

With ``hybrid`` among ``--modes`` the monitor's model mode runs throughout, so
every node carries a live power reading (and every scheduler absorbs its writes).

Results go to ``--out`` (JSON; one entry per size and mode, others kept) and to a
section of BENCHMARKS.md (between markers; other sections kept). ``--profile
PATH`` runs energysched under cProfile (its timings are then inflated; use it to
find where the time goes, not for the figures).
"""
