"""The box as an OpenID Connect relying party of the force's identity provider.

Authorisation code with PKCE (S256), ``state`` bound to the browser that began the
sign-in and used once, a ``nonce`` checked in the ID token. The provider's endpoints come
from its discovery document, its keys from its JWKS; a token naming a key we do not hold
makes us fetch the JWKS again, once (a rotation), and no more often than
``UNKNOWN_KEY_REFETCH`` however many such tokens arrive. Only RS256 and ES256 are
accepted: ``none`` and the HMAC algorithms (with which a forger signs using the provider's
public key as the secret) are refused before any key is looked at.

The signature and the claim checks are joserfc's (``jwt.decode`` with the algorithms
allowed, ``JWTClaimsRegistry``), not ours: joserfc is Authlib's JOSE, split out by its
author; Authlib 1.9 deprecates its own ``authlib.jose`` for it and warns on every import.
What this module proves is who the provider says the user is; what that user may do on
the box is the identity service's decision (``services/identity/federation.py``).
The box authenticates to the token endpoint with its client secret, or with a client
assertion signed by its own key (``private_key_jwt``, RFC 7523), which keeps no shared
secret on the box. Pending sign-ins live in memory: a restart of the box costs a user one
more click, not a weakness.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from appliance.config import Settings

ALGORITHMS = ("RS256", "ES256")
PENDING_LIFETIME = 600.0  # seconds a browser has to come back from the provider
PENDING_MAX = 10_000  # sign-ins begun and not finished, held at once
DISCOVERY_LIFETIME = 3600.0
UNKNOWN_KEY_REFETCH = 60.0  # at most one JWKS fetch a minute for tokens naming new keys
LEEWAY = 60  # seconds of clock skew allowed on exp, iat
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
BROWSER_COOKIE = "__Host-evr_oidc"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ASSERTION_LIFETIME = 60  # seconds: sent at once, to the token endpoint only


class OidcError(Exception):
    """A sign-in the protocol refuses. ``reason`` is the audit's code; the message is
    for the person at the browser and says nothing a forger could use."""

    def __init__(self, reason: str, message: str = "The sign-in could not be completed.") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Provider:
    """The endpoints the provider's discovery document names."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None


@dataclass(frozen=True)
class Pending:
    """A sign-in begun: what the browser must bring back, and what we must see again."""

    state: str
    nonce: str
    verifier: str
    browser: str  # SHA-256 of the cookie set on the browser that began it
    next_path: str
    started: float


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in, from a verified ID token."""

    issuer: str
    subject: str
    name: str
    username_hint: str
    groups: tuple[str, ...]
    amr: tuple[str, ...]
    acr: str | None
    claims: dict[str, Any] = field(repr=False, default_factory=dict)
    # The token as the provider signed it: sent back as ``id_token_hint`` at sign-out,
    # which some providers (glewlwyd; Keycloak without a confirmation page) require.
    id_token: str = field(repr=False, default="")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _s256(verifier: str) -> str:
    """RFC 7636's S256 code challenge."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def certificate_thumbprints(path: Path) -> dict[str, str]:
    """The JOSE header parameters that name a certificate by its thumbprint (RFC 7515
    4.1.7 and 4.1.8): base64url SHA-1 and SHA-256 of its DER. Entra ID picks the key a
    client assertion is checked with by ``x5t``."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)

    def b64(digest: bytes) -> str:
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    return {
        "x5t": b64(hashlib.sha1(der, usedforsecurity=False).digest()),
        "x5t#S256": b64(hashlib.sha256(der).digest()),
    }


def _header(token: str) -> dict[str, Any]:
    try:
        head = token.split(".", 1)[0]
        parsed = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise OidcError("malformed_token") from exc
    if not isinstance(parsed, dict):
        raise OidcError("malformed_token")
    return parsed


def _holds(keys: KeySet, kid: Any) -> bool:
    return isinstance(kid, str) and any(key.kid == kid for key in keys.keys)


class RelyingParty:
    """One per app; holds the discovery document, the keys and the pending sign-ins."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer is not None and settings.oidc_client_id is not None
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        secret = settings.oidc_client_secret
        self._secret = secret.get_secret_value() if secret is not None else None
        self._client_key: RSAKey | ECKey | None = None
        self._client_key_id = settings.oidc_client_key_id
        self._client_thumbprints = (
            certificate_thumbprints(settings.oidc_client_certificate_file)
            if settings.oidc_client_certificate_file is not None
            else {}
        )
        if settings.oidc_client_key_file is not None:
            pem = settings.oidc_client_key_file.read_bytes()
            try:
                self._client_key = RSAKey.import_key(pem)
            except (JoseError, ValueError, TypeError):
                self._client_key = ECKey.import_key(pem)
        self.redirect_url = (
            settings.oidc_redirect_url or f"{settings.effective_public_url}/oidc/callback"
        )
        self.scopes = " ".join(settings.oidc_scopes)
        self.groups_claim = settings.oidc_groups_claim
        self._provider: Provider | None = None
        self._provider_at = 0.0
        self._keys: KeySet | None = None
        self._unknown_key_fetched_at = -UNKNOWN_KEY_REFETCH
        self._pending: dict[str, Pending] = {}

    async def _get_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http,
            http.request(kwargs.pop("method", "GET"), url, allow_redirects=False, **kwargs) as r,
        ):
            if r.status != 200:
                raise OidcError("provider_http", "The force's sign-in service did not answer.")
            body = await r.json(content_type=None)
        if not isinstance(body, dict):
            raise OidcError("provider_http", "The force's sign-in service did not answer.")
        return body

    async def provider(self) -> Provider:
        """The discovery document, read again after an hour. Its issuer must be the one
        configured, exactly (OpenID Connect Discovery 1.0, section 4.3)."""
        if self._provider is not None and time.monotonic() - self._provider_at < (
            DISCOVERY_LIFETIME
        ):
            return self._provider
        try:
            doc = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError(
                "discovery_failed", "The force's sign-in service did not answer."
            ) from exc
        if doc.get("issuer") != self.issuer:
            raise OidcError("discovery_issuer", "The force's sign-in service is misconfigured.")
        try:
            self._provider = Provider(
                issuer=doc["issuer"],
                authorization_endpoint=doc["authorization_endpoint"],
                token_endpoint=doc["token_endpoint"],
                jwks_uri=doc["jwks_uri"],
                end_session_endpoint=doc.get("end_session_endpoint"),
            )
        except KeyError as exc:
            raise OidcError("discovery_incomplete") from exc
        self._provider_at = time.monotonic()
        return self._provider

    async def _fetch_keys(self) -> KeySet:
        provider = await self.provider()
        try:
            jwks = await self._get_json(provider.jwks_uri)
            keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except (aiohttp.ClientError, TimeoutError, ValueError, JoseError) as exc:
            raise OidcError("jwks_failed", "The force's sign-in service did not answer.") from exc
        self._keys = keys
        return keys

    async def _key_for(self, kid: str | None) -> KeySet:
        keys = self._keys or await self._fetch_keys()
        if _holds(keys, kid):
            return keys
        now = time.monotonic()
        if now - self._unknown_key_fetched_at >= UNKNOWN_KEY_REFETCH:
            self._unknown_key_fetched_at = now
            keys = await self._fetch_keys()
            if _holds(keys, kid):
                return keys
        raise OidcError("unknown_key")

    async def begin(self, next_path: str) -> tuple[str, str]:
        """Start a sign-in: the provider's authorisation URL to send the browser to, and
        the cookie value that binds the answer to this browser."""
        provider = await self.provider()
        self._sweep()
        browser = secrets.token_urlsafe(32)
        pending = Pending(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),
            browser=_digest(browser),
            next_path=next_path,
            started=time.monotonic(),
        )
        self._pending[pending.state] = pending
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_url,
                "scope": self.scopes,
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": _s256(pending.verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{provider.authorization_endpoint}?{query}", browser

    def _sweep(self) -> None:
        cutoff = time.monotonic() - PENDING_LIFETIME
        for state in [s for s, p in self._pending.items() if p.started < cutoff]:
            del self._pending[state]
        while len(self._pending) >= PENDING_MAX:
            del self._pending[next(iter(self._pending))]

    def take(self, state: str, browser: str | None) -> Pending:
        """The pending sign-in a callback names, used up whatever follows: a state seen
        twice (a replay) or brought by another browser (login CSRF) is refused."""
        pending = self._pending.pop(state, None)
        if pending is None:
            raise OidcError("state_unknown", "This sign-in link has been used or has expired.")
        if browser is None or not secrets.compare_digest(_digest(browser), pending.browser):
            raise OidcError("state_mismatch", "This sign-in was begun in another browser.")
        if time.monotonic() - pending.started > PENDING_LIFETIME:
            raise OidcError("state_expired", "This sign-in took too long: start again.")
        return pending

    async def finish(self, pending: Pending, code: str) -> Identity:
        """Exchange the code (with the PKCE verifier) and verify the ID token."""
        provider = await self.provider()
        try:
            tokens = await self._get_json(
                provider.token_endpoint,
                method="POST",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self.redirect_url,
                    "client_id": self.client_id,
                    "code_verifier": pending.verifier,
                    **self._client_authentication(provider.token_endpoint),
                },
            )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError("token_exchange") from exc
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("no_id_token")
        return await self.verify(id_token, pending.nonce)

    def _client_authentication(self, token_endpoint: str) -> dict[str, str]:
        """The client secret (``client_secret_post``), or a client assertion signed with
        the box's key (``private_key_jwt``, RFC 7523 section 2.2): short-lived, for this
        token endpoint only, and never the same twice (``jti``), so one seen in transit
        cannot be used again."""
        if self._client_key is None:
            assert self._secret is not None
            return {"client_secret": self._secret}
        now = int(time.time())
        header: dict[str, Any] = {
            "alg": "RS256" if isinstance(self._client_key, RSAKey) else "ES256",
            "typ": "JWT",
        }
        if self._client_key_id:
            header["kid"] = self._client_key_id
        header.update(self._client_thumbprints)
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_endpoint,
            "jti": secrets.token_urlsafe(24),
            "iat": now,
            "exp": now + CLIENT_ASSERTION_LIFETIME,
        }
        return {
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": jwt.encode(header, claims, self._client_key),
        }

    async def verify(self, id_token: str, nonce: str) -> Identity:
        header = _header(id_token)
        if header.get("alg") not in ALGORITHMS:
            raise OidcError("alg_refused")
        keys = await self._key_for(header.get("kid"))
        try:
            token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except JoseError as exc:
            raise OidcError(f"token_{exc.error}"[:64]) from exc
        except ValueError as exc:
            raise OidcError("token_invalid") from exc
        claims = dict(token.claims)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise OidcError("token_azp")  # OpenID Connect Core 3.1.3.7, items 4 and 5
        return replace(self._identity(claims), id_token=id_token)

    def _identity(self, claims: dict[str, Any]) -> Identity:
        names = claims.get("_claim_names")
        if isinstance(names, dict) and self.groups_claim in names:
            # Entra ID's "overage": too many groups to list, a Graph call would be needed.
            raise OidcError(
                "groups_overage",
                "Your account is in too many groups for the box to read: ask force IT to "
                "send only the groups assigned to this application.",
            )
        groups = claims.get(self.groups_claim, [])
        if isinstance(groups, str):
            groups = [groups]
        amr = claims.get("amr", [])
        acr = claims.get("acr")
        hint = str(
            claims.get("preferred_username") or claims.get("email") or claims.get("name") or ""
        )
        return Identity(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            name=str(claims.get("name") or hint or claims["sub"])[:120],
            username_hint=hint.split("@", 1)[0],
            groups=tuple(str(g) for g in groups if isinstance(g, str | int)),
            amr=tuple(str(a) for a in amr) if isinstance(amr, list) else (),
            acr=str(acr) if acr is not None else None,
            claims=claims,
        )

    async def end_session_url(
        self, post_logout: str, id_token_hint: str | None = None
    ) -> str | None:
        """The provider's sign-out page (RP-initiated logout 1.0), if it has one; with the
        ID token of the sign-in, so the provider knows whose session to end."""
        try:
            provider = await self.provider()
        except OidcError:
            return None
        if provider.end_session_endpoint is None:
            return None
        parameters = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout}
        if id_token_hint:
            parameters["id_token_hint"] = id_token_hint
        return f"{provider.end_session_endpoint}?{urlencode(parameters)}"
