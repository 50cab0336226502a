"""``make perf``: how fast energysched binds a burst of pods, next to kube-scheduler.

A benchmark, not a test: nothing here asserts on time. One local cluster (real
etcd, kube-apiserver, kube-controller-manager, kube-scheduler; KWOK nodes) is
started with ``--nodes N`` generated nodes and kube-scheduler's client limited
to ``--qps``/``--burst``; energysched runs as a subprocess with the same
limits, leader election on and its metrics on a free loopback port. Both
schedulers run for the whole benchmark (as they would side by side in a
cluster); each gets one burst of ``--pods`` pods in a namespace of its own, one
after the other, the first burst's pods deleted and gone before the second.

Per burst, a separate unthrottled client creates the pods (``--concurrency``
creates in flight) and records when each create call returned; a watch on the
namespace records when each pod was first seen with a ``nodeName``. From that:

* pods/s over the bind phase (first bind to last bind) and overall (first
  create to last bind), plus scheduler_perf's figure: per-second samples of how
  many pods are bound, as average / p50 / p90 of the per-second rates;
* creation-to-bound latency per pod (create call returned -> bind seen), p50/p99;
* the scheduler's CPU seconds (``cpu_times`` at both ends of its burst) and peak
  RSS (sampled every 0.5 s; ``VmHWM`` too), for both schedulers;
* energysched's per-pod decision time from its
  ``energysched_scheduling_algorithm_duration_seconds`` histogram (and kube-
  scheduler's ``scheduler_scheduling_algorithm_duration_seconds`` when its
  secure metrics endpoint answers).

Results go to ``--out`` (JSON; one entry per nodes x pods size, others kept)
and to a section of BENCHMARKS.md (between markers; other sections kept).
``--profile PATH`` runs energysched under cProfile (its timings are then
inflated; use it to find where the time goes, not for the figures).
"""
