"""A small asyncio Kubernetes client: kubeconfig loading, REST calls, watches.

Why our own and not the official client: the official Python client is
synchronous, cannot parse the Binding response (kubernetes-client/python#547),
and hides watch bookmarks and 410s behind a generic stream. The scheduler needs
exact control over list-then-watch and binding, so this layer is thin and explicit.
"""

from energysched.kube.client import ApiError, KubeClient, WatchEvent
from energysched.kube.config import ClusterAccess, KubeConfigError, load_access

__all__ = [
    "ApiError",
    "ClusterAccess",
    "KubeClient",
    "KubeConfigError",
    "WatchEvent",
    "load_access",
]
