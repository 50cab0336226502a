"""HTTP Digest access authentication, RFC 7616, as Shelly Gen2+ devices use it (pure).

A Shelly answers an unauthenticated request with ``401`` and::

    WWW-Authenticate: Digest qop="auth", realm="shellyplusplugs-a8032ab12345",
                      nonce="1700000000", algorithm=SHA-256

and the client repeats the request with::

    Authorization: Digest username="admin", realm="...", nonce="...", uri="/rpc/...",
                   algorithm=SHA-256, qop=auth, nc=00000001, cnonce="...", response="..."

where ``response = H(HA1:nonce:nc:cnonce:qop:HA2)``, ``HA1 = H(user:realm:password)``,
``HA2 = H(method:uri)`` and ``H`` is SHA-256 in lowercase hex. Firmware 2.0+ accepts
the same nonce again with an increasing ``nc``; :class:`DigestSession` does that and
re-authenticates on the next 401.

aiohttp has no digest support; this module is small enough to own and is tested
against the fake device and against RFC 7616's own example.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

_HASHES = {"MD5": "md5", "SHA-256": "sha256"}
_PARAM = re.compile(
    r"""\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*(?:,|$)"""
)


class DigestError(ValueError):
    """A challenge or an Authorization header that cannot be used."""


def parse_params(text: str) -> dict[str, str]:
    """``a="x", b=y`` into ``{"a": "x", "b": "y"}`` (names lowercased, quotes undone)."""
    params: dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _PARAM.match(text, pos)
        if match is None or match.end() == pos:
            raise DigestError(f"cannot parse auth parameters at {text[pos : pos + 40]!r}")
        name, value = match.group(1).lower(), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[name] = value
        pos = match.end()
    return params


def _split_scheme(header: str) -> tuple[str, str]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), rest


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"  # RFC 7616's default when the server names none
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @property
    def session(self) -> bool:
        return self.algorithm.upper().endswith("-SESS")

    @property
    def base_algorithm(self) -> str:
        algorithm = self.algorithm.upper()
        return algorithm[: -len("-SESS")] if self.session else algorithm


def parse_challenge(header: str) -> Challenge:
    """The Digest challenge of one ``WWW-Authenticate`` header value."""
    scheme, rest = _split_scheme(header)
    if scheme != "digest":
        raise DigestError(f"not a Digest challenge: {header[:60]!r}")
    params = parse_params(rest)
    try:
        realm, nonce = params["realm"], params["nonce"]
    except KeyError as exc:
        raise DigestError(f"Digest challenge without {exc.args[0]}") from None
    challenge = Challenge(
        realm=realm,
        nonce=nonce,
        algorithm=params.get("algorithm", "MD5"),
        qop=tuple(q.strip() for q in params.get("qop", "").split(",") if q.strip()),
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )
    if challenge.base_algorithm not in _HASHES:
        raise DigestError(f"unsupported digest algorithm {challenge.algorithm!r}")
    if challenge.qop and "auth" not in challenge.qop:
        raise DigestError(f"unsupported qop {','.join(challenge.qop)!r} (only auth)")
    return challenge


def pick_challenge(headers: list[str]) -> Challenge:
    """The strongest usable Digest challenge among several ``WWW-Authenticate`` values."""
    usable: list[Challenge] = []
    errors: list[str] = []
    for header in headers:
        try:
            usable.append(parse_challenge(header))
        except DigestError as exc:
            errors.append(str(exc))
    if not usable:
        raise DigestError("; ".join(errors) or "401 without a WWW-Authenticate challenge")
    return max(usable, key=lambda c: c.base_algorithm == "SHA-256")


def h(algorithm: str, data: str) -> str:
    return hashlib.new(_HASHES[algorithm], data.encode("utf-8")).hexdigest()


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """``H(username:realm:password)``: what a Shelly stores (Shelly.SetAuth's ``ha1``)."""
    return h(algorithm, f"{username}:{realm}:{password}")


def compute_response(
    challenge: Challenge,
    stored_ha1: str,
    method: str,
    uri: str,
    nc: str,
    cnonce: str,
    qop: str | None,
) -> str:
    algorithm = challenge.base_algorithm
    key = stored_ha1
    if challenge.session:
        key = h(algorithm, f"{stored_ha1}:{challenge.nonce}:{cnonce}")
    ha2 = h(algorithm, f"{method.upper()}:{uri}")
    if qop:
        return h(algorithm, f"{key}:{challenge.nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return h(algorithm, f"{key}:{challenge.nonce}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization(
    challenge: Challenge,
    username: str,
    password: str,
    method: str,
    uri: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The ``Authorization`` header value answering ``challenge`` for one request."""
    cnonce = cnonce if cnonce is not None else secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    qop = "auth" if challenge.qop else None
    stored = ha1(challenge.base_algorithm, username, challenge.realm, password)
    response = compute_response(challenge, stored, method, uri, nc_text, cnonce, qop)
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"algorithm={challenge.algorithm}",
        f"response={_quote(response)}",
    ]
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={_quote(cnonce)}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)


class DigestSession:
    """Client state for one device: the last challenge and its nonce count."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self._challenge: Challenge | None = None
        self._nc = 0

    def __repr__(self) -> str:  # never the password
        return f"DigestSession(username={self.username!r})"

    @property
    def has_challenge(self) -> bool:
        return self._challenge is not None

    def challenged(self, challenge: Challenge) -> None:
        self._challenge, self._nc = challenge, 0

    def forget(self) -> None:
        self._challenge, self._nc = None, 0

    def header(self, method: str, uri: str) -> str | None:
        """The Authorization header for the next request, or None before any challenge."""
        if self._challenge is None:
            return None
        self._nc += 1
        return authorization(
            self._challenge, self.username, self._password, method, uri, nc=self._nc
        )


# -- server side (the fake device) ------------------------------------------------------


def parse_authorization(header: str) -> Mapping[str, str]:
    scheme, rest = _split_scheme(header)
    if scheme != "digest":
        raise DigestError("not a Digest Authorization header")
    return parse_params(rest)


def verify(
    params: Mapping[str, str],
    method: str,
    realm: str,
    stored_ha1: str,
    algorithm: str = "SHA-256",
) -> bool:
    """Check an Authorization header's ``response`` (the nonce is the caller's concern)."""
    try:
        if params["realm"] != realm or params.get("algorithm", "MD5").upper() != algorithm:
            return False
        challenge = Challenge(realm, params["nonce"], algorithm, ("auth",))
        qop = params.get("qop")
        if qop not in (None, "auth"):
            return False
        expected = compute_response(
            challenge,
            stored_ha1,
            method,
            params["uri"],
            params.get("nc", ""),
            params.get("cnonce", ""),
            qop,
        )
        return hmac.compare_digest(expected, params["response"].lower())
    except (KeyError, DigestError):
        return False
