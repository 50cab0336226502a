# The product image: scheduler, operator and monitor, entry `energysched`.
# Built by `make images` (lab/energysched_lab/images): the build context is staged
# on the host (runtime dependencies as PyPI wheels for the target platform, the
# energysched wheel, which holds no lab code, byte-compiled, the entry script), so this file only copies and builds the same way for amd64, arm64
# and arm/v7. BASE: Debian bookworm minbase with Python 3.11, numpy and PyYAML
# from Debian, made by mmdebstrap; it has the user energysched (10001) and /data.
# Few instructions on purpose: with the vfs storage driver each one copies the
# whole file system.
ARG BASE
FROM ${BASE}
COPY rootfs/ /
# Read-only root file system: nothing writes bytecode or a home directory.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp LANG=C.UTF-8
USER 10001:10001
ENTRYPOINT ["energysched"]
