"""Score plugins, one module per scoring mode (``static-raw``, ``normalized``, ``hybrid``,
``cluster-energy``).

Each module defines ``PLUGIN`` (see :mod:`energysched.core.interface`) and keeps
its own figures in its part of the result; what the modes share (no-data and
neutral policies, taint factor, ranking) is :mod:`energysched.core.runtime`, the
live-readings classification two modes use is :mod:`energysched.core.readings`.
"""
