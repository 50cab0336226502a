"""The EnergyProfile operator (kopf): validation, status, matched nodes, warnings.

* :mod:`.status` — pure: what is known, what each status should be, which warnings are due;
* :mod:`.runtime` — the I/O shell: seeding, the debounced reconciler, the event poster;
* :mod:`.handlers` — kopf's registry (event handlers, login, start-up) and settings;
* :mod:`.main` — run it as the main program (the lab runs it in a thread of its own);
* :mod:`.cli` — ``energysched operator``.

This package's ``__init__`` imports nothing, so the CLI does not pay for kopf unless used.
"""
