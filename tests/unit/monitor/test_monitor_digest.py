"""Shelly Gen2+ digest auth: aiohttp's DigestAuthMiddleware against RFC 7616 and the fake.

The client side is aiohttp's (pinned 3.14); what is ours is the device side in the
fake plug. The chain of evidence: the fake's verifier reproduces RFC 7616's own
example responses (section 3.9.1), and the middleware satisfies that verifier for
the RFC's challenge, for Shelly's, and across nonce reuse, reboots and bad challenges.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from energysched_lab.fake_shelly import DigestError, ha1, parse_authorization, verify
from energysched_monitor.readings import ReadError
from energysched_monitor.secret import Secret
from energysched_monitor.shelly import ShellySource

# RFC 7616, section 3.9.1: the same request answered with SHA-256 and with MD5.
RFC = {
    "username": "Mufasa",
    "password": "Circle of Life",
    "realm": "http-auth@example.org",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "uri": "/dir/index.html",
}
RFC_RESPONSES = {
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
}


def rfc_params(algorithm: str) -> dict[str, str]:
    return {
        "username": RFC["username"],
        "realm": RFC["realm"],
        "uri": RFC["uri"],
        "algorithm": algorithm,
        "nonce": RFC["nonce"],
        "nc": "00000001",
        "cnonce": RFC["cnonce"],
        "qop": "auth",
        "response": RFC_RESPONSES[algorithm],
        "opaque": RFC["opaque"],
    }


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_verifier_reproduces_the_rfc7616_example(algorithm: str) -> None:
    stored = ha1(algorithm, RFC["username"], RFC["realm"], RFC["password"])
    params = rfc_params(algorithm)
    assert verify(params, "GET", RFC["realm"], stored, algorithm)
    # and it is not a verifier that accepts anything
    assert not verify(params, "POST", RFC["realm"], stored, algorithm)
    assert not verify({**params, "uri": "/dir/other.html"}, "GET", RFC["realm"], stored, algorithm)
    assert not verify({**params, "nc": "00000002"}, "GET", RFC["realm"], stored, algorithm)
    wrong = ha1(algorithm, RFC["username"], RFC["realm"], "Circle of Death")
    assert not verify(params, "GET", RFC["realm"], wrong, algorithm)
    no_response = {k: v for k, v in params.items() if k != "response"}
    assert not verify(no_response, "GET", RFC["realm"], stored, algorithm)


def test_shelly_ha1_matches_the_documented_recipe() -> None:
    # Shelly.SetAuth takes ha1 = sha256("admin:<realm>:<password>") in hex.
    expected = hashlib.sha256(b"admin:shellyplus1-xyz:mysecretpassword").hexdigest()
    assert ha1("SHA-256", "admin", "shellyplus1-xyz", "mysecretpassword") == expected


def test_parse_authorization_quoted_values() -> None:
    params = parse_authorization(r'Digest realm="a \"quoted\", realm", nonce=abc, nc=00000001')
    assert params == {"realm": 'a "quoted", realm', "nonce": "abc", "nc": "00000001"}
    with pytest.raises(DigestError):
        parse_authorization('Basic realm="x"')
    with pytest.raises(DigestError):
        parse_authorization('Digest realm="r" nonce')


class Server:
    """An HTTP server that challenges with a given header and checks the answer."""

    def __init__(self, challenge: str, realm: str, stored: str, algorithm: str) -> None:
        self.challenge, self.realm, self.stored, self.algorithm = (
            challenge,
            realm,
            stored,
            algorithm,
        )
        self.authorizations: list[dict[str, str]] = []
        self.challenges = 0
        self.body: dict[str, object] = {"ok": True}

    async def handle(self, request: web.Request) -> web.Response:
        if request.path == "/shelly":  # never authenticated, as on a Shelly
            return web.json_response({"id": "shellyplusplugs-x", "gen": 2, "auth_en": True})
        header = request.headers.get("Authorization")
        if header:
            params = parse_authorization(header)
            self.authorizations.append(params)
            ok = params.get("uri") == request.path_qs and verify(
                params, request.method, self.realm, self.stored, self.algorithm
            )
            if ok:
                return web.json_response(self.body)
        self.challenges += 1
        return web.Response(status=401, headers={"WWW-Authenticate": self.challenge})


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Server], object]]:
    runners: list[web.AppRunner] = []

    async def start(server: Server) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", server.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
@pytest.mark.parametrize("qop", ["auth, auth-int", "auth"])
async def test_middleware_answers_the_rfc7616_challenge(
    serve: Callable[[Server], object], algorithm: str, qop: str
) -> None:
    challenge = (
        f'Digest realm="{RFC["realm"]}", qop="{qop}", algorithm={algorithm}, '
        f'nonce="{RFC["nonce"]}", opaque="{RFC["opaque"]}"'
    )
    stored = ha1(algorithm, RFC["username"], RFC["realm"], RFC["password"])
    server = Server(challenge, RFC["realm"], stored, algorithm)
    base = await serve(server)  # type: ignore[misc]
    digest = aiohttp.DigestAuthMiddleware(RFC["username"], RFC["password"])
    async with aiohttp.ClientSession(middlewares=(digest,)) as http:
        for _ in range(3):
            async with http.get(f"{base}{RFC['uri']}?x=1") as resp:
                assert resp.status == 200
    assert server.challenges == 1  # then the nonce is reused, nc counting up
    assert [a["nc"] for a in server.authorizations] == ["00000001", "00000002", "00000003"]
    first = server.authorizations[0]
    assert first["opaque"] == RFC["opaque"] and first["algorithm"] == algorithm
    assert first["uri"] == f"{RFC['uri']}?x=1"
    # Offered both, the middleware protects the (empty) body too: auth-int, RFC 7616 3.4.3.
    assert first["qop"] == ("auth-int" if "auth-int" in qop else "auth")


async def test_middleware_against_the_fake_plug_and_its_reboot() -> None:
    from energysched_lab.fake_shelly import FakeShelly

    async with FakeShelly(gen=2, password="pw", realtime=False) as device:
        digest = aiohttp.DigestAuthMiddleware("admin", "pw")
        async with aiohttp.ClientSession(middlewares=(digest,)) as http:
            for _ in range(2):
                async with http.get(f"{device.url}/rpc/Shelly.GetStatus") as resp:
                    assert resp.status == 200
            device.reboot()  # nonces forgotten: one more challenge, answered
            async with http.get(f"{device.url}/rpc/Sys.GetStatus") as resp:
                assert resp.status == 200 and (await resp.json())["uptime"] == 0
    denied = [path for path, ok in device.requests if not ok]
    assert len(denied) == 2


@pytest.mark.parametrize(
    ("challenge", "says"),
    [
        ('Digest realm="r", nonce="n", algorithm=SHA-512-256, qop="auth"', "SHA-512-256"),
        ('Digest realm="r", qop="auth", algorithm=SHA-256', "nonce"),
        ('Digest realm="r", nonce="n", qop="auth-conf", algorithm=SHA-256', "auth-conf"),
        ('Basic realm="shelly"', "Basic"),
        ("Digest", "Digest"),
    ],
)
async def test_unusable_challenge_is_an_auth_error_and_passes(
    serve: Callable[[Server], object], challenge: str, says: str
) -> None:
    server = Server(challenge, "r", ha1("SHA-256", "admin", "r", "pw"), "SHA-256")
    server.body = {"switch:0": {"apower": 3.0, "aenergy": {"total": 1.0}}, "sys": {"uptime": 9}}
    base = await serve(server)  # type: ignore[misc]
    src = ShellySource(base, password=Secret("pw"), timeout=1.0)
    try:
        for _ in range(2):  # the second time too: a bad challenge is not kept
            with pytest.raises(ReadError) as info:
                await src.read()
            assert info.value.kind == "auth"
            assert says in info.value.message
        # the device comes to its senses: the source recovers without a restart
        server.challenge = 'Digest realm="r", nonce="n2", qop="auth", algorithm=SHA-256'
        reading = await src.read()
        assert (reading.watts, reading.uptime_seconds) == (3.0, 9)
    finally:
        await src.close()
