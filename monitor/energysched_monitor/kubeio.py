"""The ports over ``energysched.kube``: the monitor's only contact with the API server.

* :class:`KubeNodeAnnotator`: one JSON merge patch per publication.
* :class:`KubeNodeReader`: GET of the monitor's own node (labels, override annotation).
* :class:`ReflectorClusterView`: the model mode's caches, kept by
  ``energysched.kube.reflector.Reflector`` (list, watch, relist on 410).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from energysched.contract import API_VERSION, PROFILE_KIND, PROFILE_PLURAL
from energysched.kb.profiles import KnowledgeBase, ProfileSpec
from energysched.kb.validate import parse_profile
from energysched.kube import ApiError, KubeClient
from energysched.kube.client import api_path
from energysched.kube.reflector import Reflector, object_key
from energysched_monitor.interfaces import NodeInfo, PodInfo, node_info, pod_info


class KubeNodeAnnotator:
    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def patch_node_annotations(
        self, node: str, annotations: Mapping[str, str | None]
    ) -> None:
        await self.client.patch(
            api_path("v1", "nodes", name=node),
            {"metadata": {"annotations": dict(annotations)}},
            "merge",
        )


class KubeNodeReader:
    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def get_node(self, name: str) -> NodeInfo | None:
        try:
            return node_info(await self.client.get(api_path("v1", "nodes", name=name)))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise


class ReflectorClusterView:
    """Nodes, pods (those bound to a node) and EnergyProfiles, kept current by three
    list-then-watch reflectors; reads are dictionary lookups."""

    def __init__(self, client: KubeClient, log: Any) -> None:
        self.log = log
        self._nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, dict[str, PodInfo]] = defaultdict(dict)  # node -> key -> pod
        self._profiles: dict[str, ProfileSpec] = {}
        self._kb = KnowledgeBase()
        self.reflectors = (
            Reflector(client, api_path("v1", "nodes"), self._on_node, name="monitor-nodes"),
            Reflector(
                client,
                api_path("v1", "pods"),
                self._on_pod,
                name="monitor-pods",
                params={"fieldSelector": "spec.nodeName!="},
            ),
            Reflector(
                client,
                api_path(API_VERSION, PROFILE_PLURAL),
                self._on_profile,
                name="monitor-profiles",
            ),
        )

    # -- ClusterView -----------------------------------------------------------------

    def has_synced(self) -> bool:
        return all(r.synced.is_set() for r in self.reflectors)

    def nodes(self) -> Iterable[NodeInfo]:
        return tuple(self._nodes.values())

    def pods_on_node(self, node: str) -> Iterable[PodInfo]:
        return tuple(self._pods.get(node, {}).values())

    def knowledge_base(self) -> KnowledgeBase:
        return self._kb

    # -- handlers (quick, in the event loop) -------------------------------------------

    def _on_node(self, event: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        info = node_info(obj)
        if event == "DELETED":
            self._nodes.pop(info.name, None)
            self._pods.pop(info.name, None)
        else:
            self._nodes[info.name] = info

    def _on_pod(self, event: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        pod = pod_info(obj)
        key = object_key(obj)
        if event == "DELETED":
            self._pods.get(pod.node_name, {}).pop(key, None)
        elif pod.node_name:
            self._pods[pod.node_name][key] = pod

    def _on_profile(
        self, event: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None
    ) -> None:
        name = str((obj.get("metadata") or {}).get("name", ""))
        self._profiles.pop(name, None)
        if event != "DELETED":
            # items of a LIST may omit apiVersion/kind; the object is one anyway
            parsed = parse_profile({"apiVersion": API_VERSION, "kind": PROFILE_KIND, **obj})
            if isinstance(parsed, ProfileSpec):
                self._profiles[name] = parsed
            else:  # the operator reports it in the profile's status; skip it here
                self.log.debug("EnergyProfile invalid; ignored", profile=name)
        self._kb = KnowledgeBase.of(self._profiles.values())  # swapped whole

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(r.run()) for r in self.reflectors]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
