"""Hostile answers to the box's OpenID sign-in, each written as an attacker (or a
misconfigured provider) would send it: the user sees a refusal page, no session is made,
and the refusal is audited with its reason. A rotated key is accepted after one JWKS
refetch; a key the provider never published is not, however often it is named."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from appliance.config import Settings
from appliance.models import AuditEvent, User
from tests.support.http import FormClient
from tests.support.live import LiveServer, free_port
from tests.support.oidc_provider import (
    SigningKey,
    TestProvider,
    hmac_token,
    sign_in_through,
    sso_settings,
    unsigned_token,
)

pytestmark = pytest.mark.sqlite_only(
    reason="the checks are the token's (Authlib's JOSE and our relying party), made before "
    "any database work; the account's rows run on both engines in tests/integration/test_sso.py"
)


@pytest.fixture
async def provider() -> AsyncIterator[TestProvider]:
    idp = TestProvider()
    await idp.start(free_port())
    idp.add_user("alex", ["grp-handlers"])
    try:
        yield idp
    finally:
        await idp.stop()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, provider: TestProvider) -> Settings:
    return sso_settings(tmp_path, database_url, provider, free_port())


@pytest.fixture
async def browser(live_server: LiveServer) -> AsyncIterator[FormClient]:
    client = FormClient(live_server.base_url)
    try:
        yield client
    finally:
        await client.close()


def _refusals(server: LiveServer) -> list[str]:
    with server.db.reader() as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.action == "login.refused")).all()
        return [str(row.detail.get("reason")) for row in rows]


def _nobody_signed_in(server: LiveServer, browser: FormClient) -> bool:
    with server.db.reader() as session:
        made = session.exec(select(User).where(User.oidc_subject.is_not(None))).first()  # type: ignore[union-attr]
    return made is None and browser.cookie("__Host-evr_session") is None


def _changed(**changes: Any) -> Callable[[TestProvider], Callable[[dict[str, Any]], str]]:
    def make(idp: TestProvider) -> Callable[[dict[str, Any]], str]:
        return lambda claims: idp.sign(claims | changes)

    return make


HOSTILE: dict[str, tuple[Callable[[TestProvider], Callable[[dict[str, Any]], str]], str]] = {
    "alg_none": (lambda idp: unsigned_token, "alg_refused"),
    "hs256_keyed_with_the_public_key": (
        lambda idp: lambda claims: hmac_token(claims, idp.signer.public_pem(), idp.signer.kid),
        "alg_refused",
    ),
    "wrong_audience": (_changed(aud="another-app"), "token_invalid_claim"),
    "wrong_issuer": (_changed(iss="https://evil.example"), "token_invalid_claim"),
    "expired": (
        _changed(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "token_expired_token",
    ),
    "wrong_nonce": (_changed(nonce="a-nonce-from-another-sign-in"), "token_invalid_claim"),
    "missing_nonce": (
        lambda idp: lambda claims: idp.sign({k: v for k, v in claims.items() if k != "nonce"}),
        "token_missing_claim",
    ),
    "signed_by_a_key_never_published": (
        lambda idp: lambda claims: idp.sign(claims, SigningKey.rsa("rsa-1", fresh=True)),
        "token_bad_signature",
    ),
    "unknown_kid": (
        lambda idp: lambda claims: idp.sign(claims, SigningKey.rsa("stolen")),
        "unknown_key",
    ),
}


@pytest.mark.parametrize("attack", sorted(HOSTILE))
async def test_a_hostile_id_token_is_refused_with_a_page_and_an_audit_event(
    attack: str, live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """Each token is what the provider's token endpoint answered for a genuine code, so
    state, PKCE and client authentication all passed: only the token is wrong."""
    make, reason = HOSTILE[attack]
    provider.tamper = make(provider)
    response, page = await sign_in_through(browser)
    assert response.status == 401, page
    assert "could not be completed" in page
    assert _nobody_signed_in(live_server, browser)
    assert _refusals(live_server) == [reason]


async def test_a_replayed_callback_is_refused(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """The same callback URL (state and code) a second time, from the same browser."""
    start, _ = await browser.get("/oidc/start", allow_redirects=False)
    async with browser.session.get(start.headers["Location"], allow_redirects=False) as back:
        callback = back.headers["Location"].removeprefix(browser.base_url)
    first, _ = await browser.get(callback, allow_redirects=False)
    assert first.status == 200
    again, page = await browser.get(callback, allow_redirects=False)
    assert again.status == 401 and "has been used or has expired" in page
    assert _refusals(live_server) == ["state_unknown"]


async def test_a_callback_brought_by_another_browser_is_refused(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """Login CSRF: an attacker begins a sign-in and sends the victim the callback link."""
    start, _ = await browser.get("/oidc/start", allow_redirects=False)
    async with browser.session.get(start.headers["Location"], allow_redirects=False) as back:
        callback = back.headers["Location"].removeprefix(browser.base_url)
    victim = FormClient(live_server.base_url)
    try:
        response, page = await victim.get(callback, allow_redirects=False)
        assert response.status == 401 and "begun in another browser" in page
        assert victim.cookie("__Host-evr_session") is None
    finally:
        await victim.close()
    assert _refusals(live_server) == ["state_mismatch"]
    # Used up: the attacker's own browser cannot finish it either.
    mine, _ = await browser.get(callback, allow_redirects=False)
    assert mine.status == 401


async def test_a_rotated_key_is_accepted_after_one_jwks_refetch(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """The provider signs with a new EC key and publishes only it: the box, holding the
    old set, fetches the JWKS once more and accepts; a key never published is then
    refused without a further fetch inside the minute."""
    first, _ = await sign_in_through(browser)
    assert first.status == 200
    assert provider.hits.count("jwks") == 1
    provider.rotate("ES256")
    other = FormClient(live_server.base_url)
    try:
        rotated, page = await sign_in_through(other)
        assert rotated.status == 200, page
        assert provider.hits.count("jwks") == 2
        provider.tamper = lambda claims: provider.sign(claims, SigningKey.ec("not-published"))
        forged, _ = await sign_in_through(other)
        assert forged.status == 401
        assert provider.hits.count("jwks") == 2
    finally:
        await other.close()
    assert _refusals(live_server) == ["unknown_key"]


async def test_the_provider_saying_no_is_refused_without_a_token_request(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    start, _ = await browser.get("/oidc/start", allow_redirects=False)
    async with browser.session.get(start.headers["Location"], allow_redirects=False) as back:
        callback = back.headers["Location"].removeprefix(browser.base_url)
    state = callback.split("state=", 1)[1]
    response, page = await browser.get(
        f"/oidc/callback?error=access_denied&state={state}", allow_redirects=False
    )
    assert response.status == 401 and "did not sign you in" in page
    assert "access_denied" not in page
    assert _refusals(live_server) == ["provider_refused"]


async def test_an_unreachable_provider_gets_a_page_not_a_crash(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """The provider is down (stopped): beginning a sign-in answers 503 with a page that
    says so, and the box's own accounts' form is still there to use."""
    await provider.stop()
    response, page = await browser.get("/oidc/start", allow_redirects=False)
    assert response.status == 503 and "did not answer" in page
    login, page = await browser.get("/login")
    assert login.status == 200 and 'name="password"' in page
