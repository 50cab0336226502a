"""The EnergyProfile operator (kopf): validation, status, matched nodes, warnings.

* :mod:`.status` — pure: what is known, what each status should be, which warnings are due;
* :mod:`.runtime` — the I/O shell: seeding, the debounced reconciler, the event poster;
* :mod:`.handlers` — kopf's registry (event handlers, login, start-up) and settings;
* :mod:`.embed` — run it as the main program or in a thread with its own loop;
* :mod:`.cli` — ``energysched operator``.

Import :class:`~energysched.operator.embed.OperatorThread` from ``.embed``; this
package's ``__init__`` imports nothing, so the CLI does not pay for kopf unless used.
"""
