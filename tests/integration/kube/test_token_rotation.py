"""A rotated service-account token against the real API server.

Bound tokens (TokenRequest, bound to a Secret) stop working when their Secret
is deleted: the old token then gets 401, as an expired projected token does.
The client re-reads its tokenFile on that 401 and retries once.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from energysched.kube.client import ApiError, KubeClient, api_path
from energysched.kube.config import load_kubeconfig, read_kubeconfig
from energysched.kube.credentials import FileToken
from tests.support import wait_for


async def bound_token(kube: KubeClient, ns: str, sa: str, secret: dict[str, Any]) -> str:
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": 600,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Secret",
                "name": secret["metadata"]["name"],
                "uid": secret["metadata"]["uid"],
            },
        },
    }
    answer = await kube.create(api_path("v1", "serviceaccounts", ns, sa, "token"), request)
    token: str = answer["status"]["token"]
    return token


async def test_a_token_file_rotated_under_a_running_client(
    kube: KubeClient, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    await kube.create(api_path("v1", "serviceaccounts", namespace), {"metadata": {"name": "sa"}})
    secrets = api_path("v1", "secrets", namespace)
    first = await kube.create(secrets, {"metadata": {"name": "bind-1"}})
    second = await kube.create(secrets, {"metadata": {"name": "bind-2"}})
    token_file = tmp_path / "token"
    token1 = await bound_token(kube, namespace, "sa", first)
    token_file.write_text(token1)

    admin = read_kubeconfig(kubeconfig)
    config = tmp_path / "sa.kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": dict(admin.cluster)}],
                "users": [{"name": "sa", "user": {"tokenFile": str(token_file)}}],
                "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
                "current-context": "sa",
            }
        )
    )
    access = load_kubeconfig(config)
    # Only a 401 re-reads the file here: the periodic re-read (every 60 s) has its own
    # unit test, and would make this one depend on how long the steps below take.
    assert isinstance(access.token_source, FileToken)
    access.token_source.period = math.inf
    async with KubeClient(access, qps=0) as client:
        assert (await client.get("/version")).get("gitVersion")
        # The kubelet writes the new token; the old one is invalidated.
        token2 = await bound_token(kube, namespace, "sa", second)
        token_file.write_text(token2)
        await kube.delete(f"{secrets}/bind-1")
        await refused(config, token1)
        assert await access.token_source.token() == token1  # not re-read without a 401
        assert (await client.get("/version")).get("gitVersion")  # 401, re-read, retried
        assert await access.token_source.token() == token2
        # With no valid token at all the 401 is reported after exactly one retry.
        await kube.delete(f"{secrets}/bind-2")
        await refused(config, token2)
        with pytest.raises(ApiError) as info:
            await client.get("/version")
        assert info.value.status == 401


async def refused(config: Path, token: str) -> None:
    """Wait until the API server rejects ``token`` (its token cache holds answers ~10 s)."""
    access = replace(load_kubeconfig(config), token=token, token_source=None)
    async with KubeClient(access, qps=0) as probe:

        async def rejected() -> bool:
            try:
                await probe.get("/version")
            except ApiError as exc:
                return exc.status == 401
            return False

        await wait_for(rejected, 60, "the old token to be refused", interval=1.0)
