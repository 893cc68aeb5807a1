"""Staff sign in through the force's OpenID provider (tests/support/oidc_provider.py, a
real protocol on loopback): accounts made just in time and keyed by (issuer, subject),
roles from the role map recomputed at every sign-in, sessions cut when roles shrink, MFA
required when the settings say, sign-out offering the provider's end-session page."""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import io
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlmodel import col, delete, select

from appliance import cli
from appliance.config import Settings, SettingsError, load_settings
from appliance.db import Database
from appliance.models import AuditEvent, Role, User, UserRole, WebSession, utcnow
from appliance.services.audit import Actor
from appliance.services.identity import accounts, signing_in, web_sessions
from appliance.services.identity.accounts import AccountError
from appliance.web import keys
from tests.support.http import FormClient
from tests.support.live import LiveServer, free_port
from tests.support.oidc_provider import TestProvider, sign_in_through, sso_settings
from tests.support.staff import PASSWORD, add_user


@pytest.fixture
async def provider() -> AsyncIterator[TestProvider]:
    idp = TestProvider()
    await idp.start(free_port())
    try:
        yield idp
    finally:
        await idp.stop()


@pytest.fixture
def sso_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, provider: TestProvider, sso_overrides: dict[str, Any]
) -> Settings:
    made = {
        name: value.make(tmp_path, provider) if isinstance(value, ClientKey | Made) else value
        for name, value in sso_overrides.items()
    }
    return sso_settings(tmp_path, database_url, provider, free_port(), **made)


@pytest.fixture
async def browser(live_server: LiveServer) -> AsyncIterator[FormClient]:
    client = FormClient(live_server.base_url)
    try:
        yield client
    finally:
        await client.close()


def _events(db: Database, action: str) -> list[AuditEvent]:
    with db.reader() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def _user(db: Database, subject: str) -> tuple[User, set[Role]] | None:
    with db.reader() as session:
        user = session.exec(select(User).where(User.oidc_subject == subject)).first()
        return (user, accounts.roles_of(session, user.id)) if user is not None else None


async def test_a_handler_signs_in_through_the_provider_and_lands_on_their_work(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """The whole code flow with PKCE: the authorisation request carries state, nonce and
    an S256 challenge; the callback makes the account and a session; /my then answers."""
    alex = provider.add_user("alex", ["grp-handlers"], name="Alex Constable")
    start, _ = await browser.get("/oidc/start?next=/my", allow_redirects=False)
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["redirect_uri"] == [f"{live_server.base_url}/oidc/callback"]

    response, page = await sign_in_through(browser, "/my")

    assert response.status == 200, page
    assert 'content="0; url=/my"' in page
    mine, _ = await browser.get("/my", allow_redirects=False)
    assert mine.status == 200
    found = _user(live_server.db, alex.subject)
    assert found is not None
    user, roles = found
    assert (user.username, user.display_name, user.oidc_issuer) == (
        "alex",
        "Alex Constable",
        provider.issuer,
    )
    assert roles == {Role.HANDLER}
    assert not user.must_change_password
    created = _events(live_server.db, "user.created")[-1]
    assert created.detail["sub"] == alex.subject and created.detail["iss"] == provider.issuer
    signed = _events(live_server.db, "login.succeeded")[-1]
    assert signed.actor == "alex" and signed.detail["sub"] == alex.subject


async def test_accounts_are_keyed_by_issuer_and_subject_never_by_name(
    live_server: LiveServer, provider: TestProvider
) -> None:
    """A local account named alex exists; an IdP user whose username is alex gets an
    account of their own (suffixed), and a second IdP person with the same email but
    another subject a third: none takes over another's."""
    with live_server.db.session() as session:
        local_id = add_user(session, "alex", Role.ADMIN).id
    first = provider.add_user("alex", ["grp-handlers"])
    second = provider.add_user("alex2", ["grp-handlers"], preferred_username="alex@force.example")
    for login in ("alex", "alex2"):
        provider.signing_in = login
        client = FormClient(live_server.base_url)
        try:
            response, page = await sign_in_through(client)
            assert response.status == 200, page
        finally:
            await client.close()
    one, two = _user(live_server.db, first.subject), _user(live_server.db, second.subject)
    assert one is not None and two is not None
    names = {one[0].username, two[0].username}
    assert len(names) == 2 and "alex" not in names
    assert all(name.startswith("alex-") for name in names)
    with live_server.db.reader() as session:
        kept = accounts.require(session, "alex")
        assert kept.id == local_id and kept.oidc_subject is None
        assert accounts.roles_of(session, kept.id) == {Role.ADMIN}


async def test_roles_are_recomputed_and_sessions_cut_when_they_shrink(
    live_server: LiveServer, provider: TestProvider
) -> None:
    """Signed in as handler and admin in one browser; the force takes the admin group
    away; at the next sign-in (another browser) the account holds handler only and the
    first browser's session is over."""
    person = provider.add_user("sam", ["grp-handlers", "grp-admins"])
    first, second = FormClient(live_server.base_url), FormClient(live_server.base_url)
    try:
        await sign_in_through(first)
        users, _ = await first.get("/admin/users", allow_redirects=False)
        assert users.status == 200
        person.groups = ["grp-handlers"]
        response, _ = await sign_in_through(second)
        assert response.status == 200
        found = _user(live_server.db, person.subject)
        assert found is not None and found[1] == {Role.HANDLER}
        again, _ = await first.get("/my", allow_redirects=False)
        assert again.status == 303 and again.headers["Location"].startswith("/login")
        mine, _ = await second.get("/my", allow_redirects=False)
        assert mine.status == 200
    finally:
        await first.close()
        await second.close()
    change = _events(live_server.db, "user.roles_from_idp")[-1]
    assert change.detail["from"] == ["admin", "handler"] and change.detail["to"] == ["handler"]
    assert change.detail["sessions_ended"] is True and change.detail["sub"] == person.subject


async def test_a_user_removed_from_every_group_is_refused_and_loses_their_sessions(
    live_server: LiveServer, provider: TestProvider
) -> None:
    person = provider.add_user("kim", ["grp-handlers"])
    first, second = FormClient(live_server.base_url), FormClient(live_server.base_url)
    try:
        await sign_in_through(first)
        person.groups = ["grp-canteen"]
        response, page = await sign_in_through(second)
        assert response.status == 403
        assert "not in any group that gives access" in page
        again, _ = await first.get("/my", allow_redirects=False)
        assert again.status == 303
    finally:
        await first.close()
        await second.close()
    found = _user(live_server.db, person.subject)
    assert found is not None and found[1] == set()
    refused = _events(live_server.db, "login.refused")[-1]
    assert refused.detail["reason"] == "no_role" and refused.detail["sub"] == person.subject


async def test_a_user_in_no_mapped_group_is_refused_and_no_account_is_made(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    person = provider.add_user("lee", ["grp-canteen"])
    response, page = await sign_in_through(browser)
    assert response.status == 403
    assert "not in any group that gives access to this box" in page
    assert browser.cookie("__Host-evr_session") is None
    assert _user(live_server.db, person.subject) is None
    refused = _events(live_server.db, "login.refused")[-1]
    assert refused.detail["reason"] == "no_role" and refused.detail["sub"] == person.subject


@pytest.mark.parametrize("sso_overrides", [{"oidc_required_amr": ["mfa", "hwk"]}])
async def test_a_token_without_a_required_mfa_method_is_refused(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """The force says MFA: a password-only sign-in at the provider is refused with a page
    that says why; the same person after using an authenticator gets in."""
    person = provider.add_user("jo", ["grp-handlers"], amr=["pwd"])
    response, page = await sign_in_through(browser)
    assert response.status == 403 and "second factor" in page
    refused = _events(live_server.db, "login.refused")[-1]
    assert refused.detail["reason"] == "no_mfa" and refused.detail["amr"] == ["pwd"]
    assert _user(live_server.db, person.subject) is None
    person.amr = ["pwd", "hwk"]
    response, _ = await sign_in_through(browser)
    assert response.status == 200


@pytest.mark.parametrize("sso_overrides", [{"oidc_required_acr": ["urn:force:mfa"]}])
async def test_an_acr_listed_as_mfa_is_accepted(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    provider.add_user("ash", ["grp-handlers"], amr=["pwd"], acr="urn:force:mfa")
    response, page = await sign_in_through(browser)
    assert response.status == 200, page


async def test_sign_out_ends_the_session_and_offers_the_providers_sign_out(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """The provider's sign-out link names the client, where to come back, and the ID
    token of this sign-in (``id_token_hint``, which glewlwyd, and Keycloak without its
    confirmation page, need to know whose session to end); the box keeps that token
    only while the session lasts."""
    provider.add_user("max", ["grp-handlers"])
    await sign_in_through(browser)
    await browser.get("/my")
    with live_server.db.reader() as session:
        kept = session.exec(select(WebSession).where(col(WebSession.ended_at).is_(None))).all()
    assert [s.id_token_hint for s in kept] == [provider.id_tokens[-1]]
    response, page = await browser.post("/logout")
    assert response.status == 200
    link = html.unescape(re.search(r'id="end-session" href="([^"]+)"', page).group(1))
    assert link.startswith(f"{provider.issuer}/logout?"), link
    query = parse_qs(urlsplit(link).query)
    assert query["client_id"] == ["evr-box"]
    assert query["post_logout_redirect_uri"][0].startswith("https://127.0.0.1")
    assert query["id_token_hint"] == [provider.id_tokens[-1]]
    after, _ = await browser.get("/my", allow_redirects=False)
    assert after.status == 303 and after.headers["Location"].startswith("/login")
    assert _events(live_server.db, "logout")
    with live_server.db.reader() as session:
        hints = session.exec(select(WebSession.id_token_hint)).all()
    assert hints == [None], "the ID token outlived the session"


async def test_an_id_token_is_not_kept_past_the_sessions_absolute_age(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """A session nobody came back to end keeps its ID token only until the purge after
    its absolute age (``forget_lapsed_hints``, run with the scheduled purge)."""
    provider.add_user("max", ["grp-handlers"])
    await sign_in_through(browser)
    policy = web_sessions.SessionPolicy.from_settings(live_server.settings)
    with live_server.db.session() as session:
        assert web_sessions.forget_lapsed_hints(session, policy) == 0  # still young
        for web_session in session.exec(select(WebSession)).all():
            web_session.created_at = utcnow() - policy.absolute - datetime.timedelta(minutes=1)
            session.add(web_session)
    with live_server.db.session() as session:
        assert web_sessions.forget_lapsed_hints(session, policy) == 1
    with live_server.db.reader() as session:
        assert session.exec(select(WebSession.id_token_hint)).all() == [None]


async def test_the_login_page_offers_the_force_sign_in_beside_the_local_form(
    live_server: LiveServer, browser: FormClient
) -> None:
    response, page = await browser.get("/login?next=/my")
    assert response.status == 200
    assert 'href="/oidc/start?next=/my"' in page
    assert 'name="password"' in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"oidc_issuer": "https://idp.example"}, "needs oidc_client_id and oidc_client_secret"),
        ({"oidc_issuer": "http://idp.example"}, "must be an https:// URL"),
        (
            {
                "oidc_issuer": "https://idp.example",
                "oidc_client_id": "x",
                "oidc_client_secret": "y",
                "oidc_role_map": {"g": ["constable"]},
            },
            "oidc_role_map\\['g'\\]",
        ),
        (
            {
                "oidc_issuer": "https://idp.example",
                "oidc_client_id": "x",
                "oidc_client_secret": "y",
            },
            "needs oidc_role_map",
        ),
    ],
)
def test_incomplete_sso_settings_are_refused_at_start_up(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(data_dir=tmp_path, **overrides)


async def test_a_force_account_has_no_password_here_and_none_can_be_given(
    live_server: LiveServer, provider: TestProvider
) -> None:
    """A password reset would be a way in around the provider and its MFA: refused, on
    the web and the shell alike; the local form never signs such an account in."""
    person = provider.add_user("ren", ["grp-handlers"])
    client = FormClient(live_server.base_url)
    try:
        await sign_in_through(client)
    finally:
        await client.close()
    found = _user(live_server.db, person.subject)
    assert found is not None
    username = found[0].username
    with pytest.raises(AccountError, match="identity provider"), live_server.db.session() as s:
        accounts.reset_password(s, Actor("root", "cli"), username, privileged_ok=True)
    with live_server.db.session() as session:
        result = signing_in.sign_in(
            session, username, "any password at all", "127.0.0.1", signing_in.LockoutPolicy()
        )
    assert result.status is signing_in.SignInStatus.WRONG


async def test_the_users_page_shows_a_force_account_with_its_roles_from_the_groups(
    live_server: LiveServer, provider: TestProvider
) -> None:
    """An admin who came through the provider sees the force account marked, its roles
    as text (the role map sets them, a form would be overwritten) and no password reset."""
    provider.add_user("pat", ["grp-handlers", "grp-admins"])
    client = FormClient(live_server.base_url)
    try:
        await sign_in_through(client)
        response, page = await client.get("/admin/users")
    finally:
        await client.close()
    assert response.status == 200
    row = page.split("<td>pat</td>", 1)[1].split("</tr>", 1)[0]
    assert "force account" in row and "admin, handler" in row
    assert "reset-password" not in row and 'name="roles"' not in row


def _evr(settings: Settings, tmp_path: Path, *args: str) -> int:
    """`evr` in this process (a subprocess costs a second of imports), on this box's database."""
    config = tmp_path / "evr.toml"
    config.write_text(
        f'data_dir = "{settings.data_dir}"\ndatabase_url = "{settings.effective_database_url}"\n'
    )
    return cli.main(["--config", str(config), *args])


@pytest.mark.sqlite_only(reason="who may sign in with a password, not the database engine")
async def test_with_sso_on_a_right_password_of_an_account_not_break_glass_is_refused(
    live_server: LiveServer, browser: FormClient
) -> None:
    """SSO on, `pat` a box admin not marked break-glass: the right password gets a page
    sending them to the force sign-in, no session, and a `login.refused` event; a wrong
    password gets the usual answer, so a guesser learns nothing about the mark."""
    with live_server.db.session() as session:
        add_user(session, "pat", Role.ADMIN)

    wrong = await browser.sign_in("pat", "not the password at all")
    assert wrong.status == 401
    response, page = await browser.post("/login", {"username": "pat", "password": PASSWORD})

    assert response.status == 403
    assert "break-glass" in page and "force account" in page
    assert browser.cookie(keys.SESSION_COOKIE) is None
    mine, _ = await browser.get("/my", allow_redirects=False)
    assert mine.status in (302, 303) and "/login" in mine.headers["Location"]
    refused = _events(live_server.db, "login.refused")[-1]
    assert refused.object_id == "pat" and refused.detail == {"reason": "not_break_glass"}


@pytest.mark.sqlite_only(reason="the break-glass mark and the CLI, not the database engine")
async def test_a_break_glass_account_signs_in_with_its_password_and_is_marked_on_the_users_page(
    live_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    """`evr user break-glass pat` marks the box admin: its password signs it in under SSO
    and the users page tags it; `--off` takes the mark away (audited, sessions ended) and
    the password is refused again."""
    with live_server.db.session() as session:
        add_user(session, "pat", Role.ADMIN)
    assert _evr(settings, tmp_path, "user", "break-glass", "pat") == 0
    client = FormClient(live_server.base_url)
    try:
        signed = await client.sign_in("pat", PASSWORD)
        assert signed.status == 303
        response, page = await client.get("/admin/users")
        assert response.status == 200
        row = page.split("<td>pat</td>", 1)[1].split("</tr>", 1)[0]
        assert "break-glass" in row

        assert _evr(settings, tmp_path, "user", "break-glass", "pat", "--off") == 0
        after, _ = await client.get("/admin/users", allow_redirects=False)
        assert after.status in (302, 303)
        again = await client.sign_in("pat", PASSWORD)
        assert again.status == 403
    finally:
        await client.close()
    assert [e.object_id for e in _events(live_server.db, "user.break_glass_set")] == ["pat"]
    assert [e.object_id for e in _events(live_server.db, "user.break_glass_cleared")] == ["pat"]


@pytest.mark.sqlite_only(reason="the CLI's break-glass flag, not the database engine")
async def test_evr_user_add_break_glass_makes_an_account_that_signs_in_under_sso(
    live_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    """`evr user add --break-glass --password-stdin` as an operator makes the box's spare
    admin; the first admin a box makes for itself is break-glass too."""
    stdin = sys.stdin
    sys.stdin = io.StringIO(PASSWORD + "\n")
    try:
        code = _evr(
            settings,
            tmp_path,
            "user",
            "add",
            "spare",
            "--role",
            "admin",
            "--break-glass",
            "--password-stdin",
        )
    finally:
        sys.stdin = stdin
    assert code == 0
    client = FormClient(live_server.base_url)
    try:
        assert (await client.sign_in("spare", PASSWORD)).status == 303
    finally:
        await client.close()
    created = [e for e in _events(live_server.db, "user.created") if e.object_id == "spare"]
    assert created[0].detail["break_glass"] is True
    with live_server.db.session() as session:
        session.exec(delete(UserRole))
        session.exec(delete(User))
    with live_server.db.session() as session:
        assert accounts.ensure_first_admin(session) is not None
        assert accounts.require(session, "admin").break_glass


@pytest.mark.sqlite_only(reason="a refusal of the identity service, not the database engine")
async def test_a_force_account_cannot_be_made_break_glass(
    live_server: LiveServer, provider: TestProvider
) -> None:
    person = provider.add_user("ren", ["grp-handlers"])
    client = FormClient(live_server.base_url)
    try:
        await sign_in_through(client)
    finally:
        await client.close()
    found = _user(live_server.db, person.subject)
    assert found is not None
    with pytest.raises(AccountError, match="identity provider"), live_server.db.session() as s:
        accounts.set_break_glass(s, Actor("root", "cli"), found[0].username, True)


@dataclass(frozen=True)
class ClientKey:
    """An `oidc_client_key_file` made when the settings are: the box's private key in a
    PEM file, its public half given to the provider (or, ``provider_holds_another``, a
    different key, as a provider registered with the wrong certificate would)."""

    curve: bool = False
    provider_holds_another: bool = False
    # A certificate of the key is uploaded at the provider, which picks the key by it.
    certificate: bool = False

    @staticmethod
    def _new(curve: bool) -> Any:
        if curve:
            return ec.generate_private_key(ec.SECP256R1())
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def make(self, folder: Path, provider: TestProvider) -> Path:
        key = self._new(self.curve)
        path = folder / "client-key.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        held = self._new(self.curve) if self.provider_holds_another else key
        provider.client_public_key = held.public_key()
        if self.certificate:
            cert = _self_signed(held)
            (folder / "client-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            der = cert.public_bytes(serialization.Encoding.DER)
            sha1 = hashlib.sha1(der, usedforsecurity=False).digest()
            provider.client_certificate_x5t = base64.urlsafe_b64encode(sha1).rstrip(b"=").decode()
        return path


@dataclass(frozen=True)
class Made:
    """A file a :class:`ClientKey` listed before it in the overrides wrote."""

    name: str

    def make(self, folder: Path, _provider: TestProvider) -> Path:
        return folder / self.name


def _self_signed(key: Any) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EVR appliance (Wessex)")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


@pytest.mark.sqlite_only(reason="client authentication at the token endpoint, not the database")
@pytest.mark.parametrize(
    "sso_overrides",
    [
        {"oidc_client_secret": None, "oidc_client_key_file": ClientKey()},
        {"oidc_client_secret": None, "oidc_client_key_file": ClientKey(curve=True)},
    ],
    ids=["rs256", "es256"],
)
async def test_private_key_jwt_client_authentication_signs_in_without_a_client_secret(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """No client secret on the box: it signs a client assertion with its key, and the
    provider (which then accepts nothing else) checks its signature, issuer, subject,
    audience, expiry and `jti` before it hands out the ID token."""
    provider.add_user("kim", ["grp-handlers"])
    response, page = await sign_in_through(browser, "/my")
    assert response.status == 200, page
    assert provider.client_auth == ["private_key_jwt"]


@pytest.mark.sqlite_only(reason="client authentication at the token endpoint, not the database")
@pytest.mark.parametrize(
    "sso_overrides",
    [
        {
            "oidc_client_secret": None,
            "oidc_client_key_file": ClientKey(curve=curve, certificate=True),
            "oidc_client_certificate_file": Made("client-cert.pem"),
        }
        for curve in (False, True)
    ],
    ids=["rs256", "es256"],
)
async def test_a_provider_that_picks_the_key_by_certificate_thumbprint_gets_it(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """Entra ID's way: the box's certificate is uploaded at the provider, which takes a
    client assertion only if its header names that certificate by `x5t` (SHA-1 of the
    DER). With `oidc_client_certificate_file` set the box sends it and signs in."""
    provider.add_user("kim", ["grp-handlers"])
    response, page = await sign_in_through(browser, "/my")
    assert response.status == 200, page
    assert provider.client_auth == ["private_key_jwt"]


def test_a_client_certificate_of_another_key_is_refused_at_start_up(tmp_path: Path) -> None:
    """The certificate set beside the key holds another public key (the wrong file was
    copied): the settings are refused before the box starts, naming both files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "client-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file = tmp_path / "client-cert.pem"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert_file.write_bytes(_self_signed(other).public_bytes(serialization.Encoding.PEM))
    with pytest.raises(SettingsError, match="is not the certificate of"):
        load_settings(
            data_dir=tmp_path,
            oidc_issuer="https://login.example/tenant/v2.0",
            oidc_client_id="evr",
            oidc_client_key_file=key_file,
            oidc_client_certificate_file=cert_file,
            oidc_role_map={"grp-handlers": ["handler"]},
        )


@pytest.mark.sqlite_only(reason="client authentication at the token endpoint, not the database")
@pytest.mark.parametrize(
    "sso_overrides",
    [
        {
            "oidc_client_secret": None,
            "oidc_client_key_file": ClientKey(provider_holds_another=True),
        }
    ],
)
async def test_a_client_assertion_signed_by_a_key_the_provider_does_not_hold_is_refused(
    live_server: LiveServer, provider: TestProvider, browser: FormClient
) -> None:
    """The provider holds another public key of the same kind: it answers the token
    request 401 (invalid_client), the person sees the refusal page and the refusal is
    audited with its reason."""
    provider.add_user("kim", ["grp-handlers"])
    response, page = await sign_in_through(browser)
    assert response.status == 401 and "sign-in service did not answer" in page
    refused = _events(live_server.db, "login.refused")[-1]
    assert refused.detail["reason"] == "provider_http"
    assert provider.client_auth == []


@pytest.mark.parametrize("sso_overrides", [{"oidc_starts_per_source": 2}])
async def test_one_address_may_begin_only_so_many_sign_ins_a_minute(
    live_server: LiveServer, browser: FormClient, provider: TestProvider
) -> None:
    """Each start holds a pending sign-in in memory: a third start from one address
    within the minute is answered 429 with Retry-After, before the provider is asked,
    and audited through the refusal tally."""
    provider.add_user("pc3001", ["grp-handlers"])
    for _ in range(2):
        began, _ = await browser.get("/oidc/start?next=/", allow_redirects=False)
        assert began.status == 303
    refused, page = await browser.get("/oidc/start?next=/", allow_redirects=False)
    assert refused.status == 429 and "Too many sign-ins begun" in page
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert [(e.object_type, e.object_id) for e in _events(live_server.db, "login.throttled")] == [
        ("oidc", "start")
    ]
