"""Filter plugins with kube-scheduler semantics and reason strings, one module each.

Each module defines ``PLUGIN`` (see :mod:`energysched.core.interface`); the
registry orders them by ``order``, kube-scheduler's default profile::

    NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit

The runtime (:mod:`energysched.core.runtime`) runs them, per node for explain
and for all nodes at once otherwise. This package imports nothing: importing a
plugin runs no registry.
"""
