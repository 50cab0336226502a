"""Putting idle nodes to sleep and waking them: the I/O shell around the pure policy.

:mod:`energysched.power.policy` decides (pure, no clock); this package acts: the per-node
power-control annotation (:mod:`.control`), the wake and sleep methods (:mod:`.methods`),
the power manager controller and the node agent.
"""
