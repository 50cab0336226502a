"""Score plugins, one module per scoring mode (``static-raw``, ``normalized``, ``hybrid``,
``cluster-energy``).

Each module defines ``PLUGIN`` (see :mod:`energysched.core.plugin`); what the
modes share (no-data and neutral policies, taint factor, ranking) is
:mod:`energysched.core.scoring`.
"""
