"""A KubeClient that never touches the network: objects in a dict, calls recorded."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from energysched.kube.client import JSON, ApiError, KubeClient, PatchType
from energysched.kube.config import ClusterAccess


class FakeKube(KubeClient):
    """Objects by path; ``fail`` maps a verb to the ApiError its next calls raise."""

    def __init__(self) -> None:
        super().__init__(ClusterAccess("http://127.0.0.1:1", None), qps=0)
        self.objects: dict[str, JSON] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.fail: dict[str, ApiError] = {}
        self._rv = 0

    def _check(self, verb: str) -> None:
        if verb in self.fail:
            raise self.fail[verb]

    def _stamp(self, obj: JSON) -> JSON:
        self._rv += 1
        stored = copy.deepcopy(obj)
        stored.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        return stored

    async def get(self, path: str, **params: str | int) -> JSON:
        self.calls.append(("get", path, params))
        self._check("get")
        if path not in self.objects:
            raise ApiError(404, "NotFound", f"{path} not found")
        return copy.deepcopy(self.objects[path])

    async def create(self, path: str, obj: Mapping[str, Any]) -> JSON:
        self.calls.append(("create", path, copy.deepcopy(dict(obj))))
        self._check("create")
        full = f"{path}/{obj['metadata']['name']}"
        if full in self.objects:
            raise ApiError(409, "AlreadyExists", f"{full} exists")
        self.objects[full] = self._stamp(dict(obj))
        return copy.deepcopy(self.objects[full])

    async def replace(self, path: str, obj: Mapping[str, Any]) -> JSON:
        self.calls.append(("replace", path, copy.deepcopy(dict(obj))))
        self._check("replace")
        current = self.objects.get(path)
        if current is None:
            raise ApiError(404, "NotFound", f"{path} not found")
        if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        self.objects[path] = self._stamp(dict(obj))
        return copy.deepcopy(self.objects[path])

    async def patch(self, path: str, patch: Any, patch_type: PatchType = "merge") -> JSON:
        self.calls.append(("patch", path, (patch_type, copy.deepcopy(patch))))
        self._check("patch")
        return {}
