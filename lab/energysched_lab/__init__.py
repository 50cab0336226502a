"""The lab around the product: what researchers and tests run, never the cluster image.

A local control plane (``cluster``), the experiment and its simulator, the
``make perf`` harness, the pure core's microbenchmark and a fake Shelly plug.
The runtime packages (core, kube, kb, scheduler, operator, monitor) never
import from here; ``make lint`` checks that contract.
"""
