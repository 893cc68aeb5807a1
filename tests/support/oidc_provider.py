"""A small OpenID provider on loopback for the sign-in tests: the real protocol, real keys.

The happy path also runs through a real provider, Debian's glewlwyd
(tests/support/glewlwyd.py, tests/e2e/test_sign_in_glewlwyd.py). This one stays for what
a real provider will not do on request: the refusal tests need one that misbehaves
(forges, rotates, expires, signs with no key or an HMAC one), and the integration tests
one that signs in whoever a test names without a login page, in-process and in
milliseconds. It speaks the protocol as a real provider does: discovery, a JWKS of real
RSA and EC public keys, the authorisation endpoint (it signs in whoever ``signing_in``
names, as if they had typed their password and used their authenticator), the token
endpoint checking the client secret (or the client assertion of ``private_key_jwt``, RFC
7523, against the public key in ``client_public_key``: signature, issuer and subject,
audience, expiry, ``jti`` once), the redirect URI and the PKCE verifier, and ID tokens
signed with PyJWT (the box verifies with joserfc, so two implementations check each
other). ``tamper`` lets a test replace the ID token a code buys with a hostile one,
written as an attacker would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import ClientResponse, web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from appliance.config import Settings, load_settings
from tests.support.http import FormClient
from tests.support.live import free_port

CLIENT_ID = "evr-box"
CLIENT_SECRET = "a-client-secret-for-the-tests"


@dataclass
class ProviderUser:
    subject: str
    name: str
    preferred_username: str
    groups: list[str]
    amr: list[str] = field(default_factory=lambda: ["pwd", "mfa"])
    acr: str | None = None


_KEYS: dict[tuple[str, str], Any] = {}


def _key(kid: str, alg: str) -> Any:
    """Keys are made once per worker and named: RSA generation costs a test more than
    the rest of its sign-in."""
    if (kid, alg) not in _KEYS:
        _KEYS[kid, alg] = _fresh(alg)
    return _KEYS[kid, alg]


def _fresh(alg: str) -> Any:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    @classmethod
    def rsa(cls, kid: str, fresh: bool = False) -> SigningKey:
        return cls(kid, "RS256", _fresh("RS256") if fresh else _key(kid, "RS256"))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", _key(kid, "ES256"))

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        to_jwk = RSAAlgorithm.to_jwk if self.alg == "RS256" else ECAlgorithm.to_jwk
        return {
            **to_jwk(self.private.public_key(), as_dict=True),
            "kid": self.kid,
            "use": "sig",
            "alg": self.alg,
        }


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any]) -> str:
    """``alg: none``: no signature at all."""
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def hmac_token(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """HS256 keyed with the provider's *public* key, the classic algorithm confusion."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = f"{header}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{b64(signature)}"


Tamper = Callable[[dict[str, Any]], str]


class TestProvider:
    """Start with ``await provider.start()``; ``issuer`` is its base URL."""

    __test__ = False

    def __init__(self) -> None:
        self.keys = [SigningKey.rsa("rsa-1"), SigningKey.ec("ec-1")]
        self.published = list(self.keys)
        self.signer = self.keys[0]
        self.users: dict[str, ProviderUser] = {}
        self.signing_in = ""
        self.codes: dict[str, dict[str, Any]] = {}
        self.tamper: Tamper | None = None
        self.hits: list[str] = []
        self.with_end_session = True
        # Set, the token endpoint takes only a client assertion signed by its private key.
        self.client_public_key: Any = None
        # Set too, it picks that key by the assertion's `x5t` thumbprint, as Entra ID does,
        # and refuses an assertion that does not name it.
        self.client_certificate_x5t: str | None = None
        self.client_auth: list[str] = []  # how the box authenticated, each exchange
        self.id_tokens: list[str] = []  # every ID token given out, in order
        self._assertions_seen: set[str] = set()
        self.issuer = ""
        self._runner: web.AppRunner | None = None

    def add_user(self, login: str, groups: list[str], **kwargs: Any) -> ProviderUser:
        user = ProviderUser(
            subject=kwargs.pop("subject", f"sub-{secrets.token_hex(8)}"),
            name=kwargs.pop("name", login.title()),
            preferred_username=kwargs.pop("preferred_username", f"{login}@force.example"),
            groups=groups,
            **kwargs,
        )
        self.users[login] = user
        self.signing_in = login
        return user

    def rotate(self, alg: str = "RS256", keep_old: bool = False) -> SigningKey:
        """A new signing key, published (with or without the old ones) and used from now."""
        new = (SigningKey.rsa if alg == "RS256" else SigningKey.ec)(
            f"{alg.lower()}-{len(self.keys) + 1}"
        )
        self.keys.append(new)
        self.published = [*self.published, new] if keep_old else [new]
        self.signer = new
        return new

    def claims_for(self, user: ProviderUser, nonce: str) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.subject,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "name": user.name,
            "preferred_username": user.preferred_username,
            "groups": list(user.groups),
            "amr": list(user.amr),
        }
        if user.acr is not None:
            claims["acr"] = user.acr
        return claims

    def sign(self, claims: dict[str, Any], key: SigningKey | None = None) -> str:
        key = key or self.signer
        return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid})

    # -- the endpoints ---------------------------------------------------------------------

    async def _discovery(self, request: web.Request) -> web.Response:
        self.hits.append("discovery")
        doc = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        }
        if self.with_end_session:
            doc["end_session_endpoint"] = f"{self.issuer}/logout"
        return web.json_response(doc)

    async def _jwks(self, request: web.Request) -> web.Response:
        self.hits.append("jwks")
        return web.json_response({"keys": [key.jwk() for key in self.published]})

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return web.Response(status=400, text="bad client or response type")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.Response(status=400, text="PKCE required")
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "user": self.users[self.signing_in],
            "redirect_uri": q["redirect_uri"],
            "challenge": q["code_challenge"],
            "nonce": q.get("nonce", ""),
        }
        query = urlencode({"code": code, "state": q.get("state", "")})
        raise web.HTTPFound(f"{q['redirect_uri']}?{query}")

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = self.codes.pop(str(form.get("code", "")), None)
        if (
            grant is None
            or form.get("client_id") != CLIENT_ID
            or form.get("redirect_uri") != grant["redirect_uri"]
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        method = self._client_authenticated(form, f"{self.issuer}/token")
        if method is None:
            return web.json_response({"error": "invalid_client"}, status=401)
        self.client_auth.append(method)
        verifier = str(form.get("code_verifier", ""))
        if b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return web.json_response({"error": "invalid_grant", "why": "pkce"}, status=400)
        claims = self.claims_for(grant["user"], grant["nonce"])
        id_token = self.tamper(claims) if self.tamper is not None else self.sign(claims)
        self.id_tokens.append(id_token)
        return web.json_response(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "id_token": id_token,
            }
        )

    def _client_authenticated(self, form: Any, token_url: str) -> str | None:
        """The client authentication method that passed, or None."""
        if self.client_public_key is None:
            return "client_secret_post" if form.get("client_secret") == CLIENT_SECRET else None
        if "client_secret" in form or form.get("client_assertion_type") != (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return None
        assertion = str(form.get("client_assertion", ""))
        if self.client_certificate_x5t is not None:
            try:
                named = jwt.get_unverified_header(assertion).get("x5t")
            except jwt.PyJWTError:
                return None
            if named != self.client_certificate_x5t:
                return None
        try:
            claims = jwt.decode(
                assertion,
                self.client_public_key,
                algorithms=["RS256", "ES256"],
                audience=token_url,
                issuer=CLIENT_ID,
                options={"require": ["exp", "iat", "jti", "sub"]},
            )
        except (jwt.PyJWTError, TypeError, ValueError):  # PyJWT: a key of another type
            return None
        if claims["sub"] != CLIENT_ID or claims["jti"] in self._assertions_seen:
            return None
        self._assertions_seen.add(claims["jti"])
        return "private_key_jwt"

    async def _logout(self, request: web.Request) -> web.Response:
        return web.Response(text="signed out of the provider")

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/logout", self._logout)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.issuer = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def sso_settings(
    tmp_path: Path, database_url: str, provider: TestProvider, port: int, **overrides: Any
) -> Settings:
    """The suite's usual settings, signing in through ``provider``."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "var",
        "database_url": database_url,
        "min_free_bytes": 0,
        "public_url": f"https://127.0.0.1:{port}",
        "port": port,
        "oidc_issuer": provider.issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_role_map": {"grp-handlers": ["handler"], "grp-admins": ["admin"]},
    }
    return load_settings(**(values | overrides))


async def sign_in_through(client: FormClient, next_path: str = "/") -> tuple[ClientResponse, str]:
    """What a browser does: the box sends it to the provider, the provider (its user
    already signed in there) sends it back with a code, the box answers the callback.
    Returns the callback's response and page."""
    response, _ = await client.get(f"/oidc/start?next={next_path}", allow_redirects=False)
    assert response.status == 303, response.status
    async with client.session.get(response.headers["Location"], allow_redirects=False) as back:
        assert back.status == 302, await back.text()
        callback = back.headers["Location"]
    assert callback.startswith(client.base_url), callback
    return await client.get(callback.removeprefix(client.base_url), allow_redirects=False)


@contextlib.contextmanager
def provider_in_thread() -> Iterator[TestProvider]:
    """A provider served by an event loop in a thread of its own, for the browser tests:
    their thread belongs to sync Playwright, and their appliance is another process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="oidc-provider", daemon=True)
    thread.start()
    provider = TestProvider()
    try:
        asyncio.run_coroutine_threadsafe(provider.start(free_port()), loop).result(30)
        yield provider
    finally:
        asyncio.run_coroutine_threadsafe(provider.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
