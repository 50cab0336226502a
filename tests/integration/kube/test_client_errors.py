"""What the client says when the real API server answers an error in plain text."""

from __future__ import annotations

import pytest

from energysched.kube.client import ApiError, KubeClient


async def test_a_resource_type_the_server_does_not_serve_is_a_404_with_its_text(
    kube: KubeClient,
) -> None:
    # kube-apiserver answers an unknown group (a CRD not installed) with a plain-text
    # "404 page not found", not a Status object: the error must say 404, not "not JSON".
    with pytest.raises(ApiError) as info:
        await kube.get("/apis/not-installed.example.com/v1/things")
    assert info.value.status == 404
    assert "not found" in str(info.value) and "not JSON" not in str(info.value)
