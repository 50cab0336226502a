"""Container images built here: a Debian base from mmdebstrap, a private docker engine.

``python -m energysched_lab.images`` (``make images``) builds the product image
(``energysched``: scheduler, operator, monitor; no lab or test code) and the
workflow image (``energysched-mlworkflow``) for amd64, arm64 and arm/v7.
"""
