"""Sign-in in a real browser: the first admin, a wrong password, sign-out, a new user;
a handler through the force's provider; a box admin's security key.

The module's one appliance runs with single sign-on on, through a provider on loopback
(tests/support/oidc_provider.py, served from a thread of this process), and is named
``localhost``: WebAuthn refuses an IP address as its relying party. With single sign-on
on, only break-glass box accounts sign in with a password, so the box accounts made here
are marked so on the shell."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, expect

from tests.support.appliance import Appliance, running_appliance
from tests.support.browser import HANDLER_PASSWORD, enrol_authenticator, signed_in_handler
from tests.support.cli import run_evr
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, TestProvider, provider_in_thread

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "the chief's own long passphrase"


@pytest.fixture(scope="module")
def provider() -> Iterator[TestProvider]:
    with provider_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def appliance(provider: TestProvider) -> Iterator[Appliance]:
    with running_appliance(
        public_host="localhost",
        EVR_OIDC_ISSUER=provider.issuer,
        EVR_OIDC_CLIENT_ID=CLIENT_ID,
        EVR_OIDC_CLIENT_SECRET=CLIENT_SECRET,
        EVR_OIDC_ROLE_MAP=json.dumps({"grp-handlers": ["handler"]}),
        EVR_OIDC_REQUIRED_AMR=json.dumps(["mfa"]),
        # The box's default, which the suite's other appliances turn off: a box admin
        # reaches nothing but enrolling a second factor until they have one.
        EVR_LOCAL_ADMIN_TOTP_REQUIRED="true",
    ) as running:
        yield running


def _sign_in(
    page: Page, appliance: Appliance, username: str, password: str, *, accepted: bool = True
) -> None:
    page.goto(appliance.base_url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if accepted:
        # Wait for the sign-in to land: a navigation started now would cancel the POST.
        expect(page).not_to_have_url(re.compile(r"/login"))


def _change_password(page: Page, current: str, new: str) -> None:
    expect(page).to_have_url(re.compile(r"/account/password$"))
    expect(page.get_by_text("Choose your own before you go on")).to_be_visible()
    page.get_by_label("Current password").fill(current)
    page.get_by_label("New password", exact=True).fill(new)
    page.get_by_label("New password again").fill(new)
    page.get_by_role("button", name="Change password").click()


def test_admin_first_sign_in_wrong_password_and_sign_out(page: Page, appliance: Appliance) -> None:
    assert appliance.admin_password, "serve printed no admin password"

    _sign_in(page, appliance, "admin", "not-the-password", accepted=False)
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page).to_have_title(re.compile("Sign in · Wessex Police"))

    _sign_in(page, appliance, "admin", appliance.admin_password)
    page.goto(appliance.base_url + "/admin/users")
    _change_password(page, appliance.admin_password, ADMIN_PASSWORD)
    # A password alone opens nothing but enrolling a second factor, the admin pages
    # included; an authenticator app set up, they open.
    page.goto(appliance.base_url + "/admin/users")
    expect(page).to_have_url(re.compile(r"/account/second-factor$"))
    app = enrol_authenticator(page)
    page.get_by_role("link", name="Continue").click()
    expect(page.get_by_role("heading", name="Welcome, Administrator")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(appliance.base_url + "/admin/users")
    expect(page).to_have_url(re.compile(r"/login\?next=/admin/users$"))

    # The one-time password no longer works; the chosen one does, and goes where asked.
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(appliance.admin_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/login/second-factor"))
    # The next step's code: the one confirmed at enrolment is spent.
    page.get_by_label(re.compile("^Six-digit code")).fill(app.at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()


def test_a_user_made_by_the_admin_must_choose_a_password(
    browser: Browser, appliance: Appliance
) -> None:
    """An admin of its own (made on the shell), so this test needs nothing of the one
    before it: it may run on an appliance of its own. Single sign-on is on, so the shell
    marks the newcomer break-glass before its password can work."""
    admin = browser.new_context(ignore_https_errors=True)
    page = signed_in_handler(admin, appliance, "adm7", role="admin", break_glass=True)
    enrol_authenticator(page)
    page.goto(appliance.base_url + "/admin/users")
    page.get_by_label("Username", exact=True).fill("pc7001")
    page.get_by_label("Display name").fill("Sam Handler")
    page.locator("form[action='/admin/users'] input[value=handler]").check()
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("heading", name="User added")).to_be_visible()
    one_time = page.locator("#one-time-password").inner_text()
    marked = run_evr(appliance.env, "user", "break-glass", "pc7001")
    assert marked.returncode == 0, marked.stderr

    newcomer = browser.new_context(ignore_https_errors=True)
    try:
        handler_page = newcomer.new_page()
        _sign_in(handler_page, appliance, "pc7001", one_time)
        _change_password(handler_page, one_time, "sam's very own passphrase")
        expect(handler_page.get_by_role("heading", name="Welcome, Sam Handler")).to_be_visible()
        expect(handler_page.get_by_role("status")).to_have_text("Password changed.")
        expect(handler_page.get_by_role("link", name="Users")).to_have_count(0)
        response = handler_page.goto(appliance.base_url + "/admin/users")
        assert response is not None and response.status == 403
    finally:
        newcomer.close()
        admin.close()


def test_a_handler_signs_in_through_the_force_provider_and_lands_on_their_work(
    page: Page, appliance: Appliance, provider: TestProvider
) -> None:
    """The provider's user in the handlers' group, with MFA shown in ``amr``, asks for
    the waiting callers and, after the provider's round trip, sees them: an account made
    just in time, with the handler role the map gives."""
    provider.add_user("pc2001", ["grp-handlers"], name="Sam Force")
    page.goto(appliance.base_url + "/calls")
    expect(page).to_have_url(re.compile(r"/login\?next=/calls$"))
    page.get_by_role("link", name="Sign in with your Wessex Police account").click()
    expect(page.get_by_role("heading", name="Waiting callers")).to_be_visible(timeout=20_000)
    assert page.url == appliance.base_url + "/calls"
    page.goto(appliance.base_url + "/")
    expect(page.get_by_role("heading", name="Welcome, Sam Force")).to_be_visible()
    expect(page.locator(".lead .tag")).to_have_text(["handler"])


def _virtual_security_key(context: BrowserContext, page: Page) -> tuple[CDPSession, str]:
    """Chromium's virtual authenticator (CTAP2 over USB, with user verification), as a
    plugged-in FIDO2 key; its CDP session and id."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": False,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def test_a_box_admin_enrols_a_security_key_and_signs_in_with_it(
    browser: Browser, appliance: Appliance
) -> None:
    """A break-glass admin enrols a key by name (recovery codes shown, as for a first
    factor), signs out; the password then opens only the second step, where the key
    (touched: the virtual one says yes) signs them in, and its list says it was used."""
    context = browser.new_context(ignore_https_errors=True, locale="en-GB")
    context.set_default_timeout(15_000)
    try:
        page = signed_in_handler(context, appliance, "adm8", role="admin", break_glass=True)
        cdp, authenticator = _virtual_security_key(context, page)
        # Sent to set up an authenticator app, the admin takes a key instead.
        page.get_by_role("link", name="Use a security key instead").click()
        page.get_by_label("Name for the key").fill("blue key, safe 2")
        page.get_by_role("button", name="Add a security key").click()
        expect(page.get_by_role("heading", name="Your security key is set up")).to_be_visible()
        expect(page.locator(".recovery-codes li")).to_have_count(10)

        page.goto(appliance.base_url + "/")
        page.get_by_role("button", name="Sign out").click()
        page.get_by_label("Username").fill("adm8")
        page.get_by_label("Password").fill(HANDLER_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/login/second-factor"))
        page.get_by_role("button", name="Use your security key").click()
        expect(page.get_by_role("heading", name="Welcome, Pat Handler")).to_be_visible()

        page.goto(appliance.base_url + "/account/security-keys")
        row = page.get_by_role("row", name=re.compile("blue key, safe 2"))
        expect(row).not_to_contain_text("never")
        held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        assert len(held["credentials"]) == 1 and held["credentials"][0]["signCount"] >= 1
    finally:
        context.close()
