"""The knowledge base: EnergyProfiles as values, and their files.

No I/O, no clock: :mod:`.profiles` (the immutable values and the rule that maps
nodes to profiles), :mod:`.validate` (the strict reader of a profile object),
:mod:`.book` (the live set: an invalid edit keeps the last valid version) and
:mod:`.show` (the nodes x workload types table). :mod:`.io` reads and writes
profiles as YAML files. Nothing here talks to a cluster (an import contract keeps
it so): the commands that do (``energysched kb show``, ``energysched bench run``)
are in :mod:`energysched.kbtools`.
"""
