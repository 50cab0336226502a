"""Pinned versions of everything the local control plane is built from.

Change a version here, run ``energysched cluster regenerate-gomod`` and commit
the regenerated go.mod/go.sum; the binary cache is keyed on these files.
"""

from typing import Final

KUBERNETES_VERSION: Final = "v1.35.4"
#: The staging modules (k8s.io/api, apimachinery, ...) are tagged v0.<minor>.<patch>.
STAGING_VERSION: Final = "v0." + KUBERNETES_VERSION.removeprefix("v1.")
#: etcd comes from the version kubernetes' own go.mod requires (see gomod/go.mod).
KWOK_VERSION: Final = "v0.8.0"
KWOK_MODULE: Final = "sigs.k8s.io/kwok"
