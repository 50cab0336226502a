"""RFC 7616 digest computation, challenge parsing and the client session (pure)."""

from __future__ import annotations

import pytest

from energysched_monitor.digest import (
    Challenge,
    DigestError,
    DigestSession,
    authorization,
    ha1,
    parse_authorization,
    parse_challenge,
    parse_params,
    pick_challenge,
    verify,
)

pytestmark = pytest.mark.unit

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


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_example(algorithm: str, expected: str) -> None:
    challenge = parse_challenge(
        f'Digest realm="{RFC["realm"]}", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC["nonce"]}", opaque="{RFC["opaque"]}"'
    )
    header = authorization(
        challenge, RFC["username"], RFC["password"], "GET", RFC["uri"], 1, RFC["cnonce"]
    )
    params = parse_authorization(header)
    assert params["response"] == expected
    assert params["nc"] == "00000001" and params["qop"] == "auth"
    assert params["opaque"] == RFC["opaque"] and params["algorithm"] == algorithm
    stored = ha1(algorithm, RFC["username"], RFC["realm"], RFC["password"])
    assert verify(params, "GET", RFC["realm"], stored, algorithm)


def test_parse_shelly_challenge() -> None:
    c = parse_challenge(
        'Digest qop="auth", realm="shellyplusplugs-a8032ab12345", nonce="1700000000", '
        "algorithm=SHA-256"
    )
    assert c == Challenge("shellyplusplugs-a8032ab12345", "1700000000", "SHA-256", ("auth",))


def test_shelly_ha1_matches_the_documented_recipe() -> None:
    # Shelly.SetAuth takes ha1 = sha256("admin:<realm>:<password>") in hex.
    import hashlib

    expected = hashlib.sha256(b"admin:shellyplus1-xyz:mysecretpassword").hexdigest()
    assert ha1("SHA-256", "admin", "shellyplus1-xyz", "mysecretpassword") == expected


def test_quoted_values_with_escapes_and_commas() -> None:
    params = parse_params(r'realm="a \"quoted\", realm", nonce=abc, stale=TRUE')
    assert params == {"realm": 'a "quoted", realm', "nonce": "abc", "stale": "TRUE"}
    c = parse_challenge(r'Digest realm="we\"ird", nonce="n", algorithm=SHA-256')
    header = authorization(c, "admin", "pw", "GET", "/x", cnonce="c")
    assert parse_authorization(header)["realm"] == 'we"ird'


@pytest.mark.parametrize(
    "header",
    [
        'Basic realm="shelly"',
        'Digest nonce="n"',  # no realm
        'Digest realm="r", nonce="n", algorithm=SHA-512-256',
        'Digest realm="r", nonce="n", qop="auth-int"',
        'Digest realm="r" nonce',
    ],
)
def test_unusable_challenges(header: str) -> None:
    with pytest.raises(DigestError):
        parse_challenge(header)


def test_pick_prefers_sha256() -> None:
    picked = pick_challenge(
        [
            'Digest realm="r", nonce="a", algorithm=MD5, qop="auth"',
            'Digest realm="r", nonce="b", algorithm=SHA-256, qop="auth"',
            'Basic realm="r"',
        ]
    )
    assert picked.nonce == "b"
    with pytest.raises(DigestError):
        pick_challenge([])


def test_session_increments_nc_and_never_shows_the_password() -> None:
    session = DigestSession("admin", "hunter2")
    assert session.header("GET", "/rpc/x") is None  # no challenge yet
    session.challenged(
        parse_challenge('Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256')
    )
    h1 = parse_authorization(session.header("GET", "/rpc/x") or "")
    h2 = parse_authorization(session.header("GET", "/rpc/x") or "")
    assert (h1["nc"], h2["nc"]) == ("00000001", "00000002")
    assert h1["cnonce"] != h2["cnonce"]
    assert "hunter2" not in repr(session)
    assert all("hunter2" not in v for v in h1.values())


def test_verify_rejects_tampering() -> None:
    c = parse_challenge('Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256')
    params = dict(parse_authorization(authorization(c, "admin", "pw", "GET", "/a", cnonce="c")))
    stored = ha1("SHA-256", "admin", "r", "pw")
    assert verify(params, "GET", "r", stored)
    assert not verify(params, "POST", "r", stored)
    assert not verify({**params, "uri": "/b"}, "GET", "r", stored)
    assert not verify(params, "GET", "r", ha1("SHA-256", "admin", "r", "wrong"))
    assert not verify({k: v for k, v in params.items() if k != "response"}, "GET", "r", stored)


def test_no_qop_legacy_form() -> None:
    c = parse_challenge('Digest realm="r", nonce="n", algorithm=SHA-256')
    header = authorization(c, "admin", "pw", "GET", "/a")
    assert "qop" not in parse_authorization(header)
