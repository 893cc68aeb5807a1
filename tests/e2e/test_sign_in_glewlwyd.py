"""Sign-in through a real identity provider the suite did not write: Debian's glewlwyd
(tests/support/glewlwyd.py), driven in Chromium through its own login pages.

The person types their username and password into glewlwyd's web app, ticks the box's
scope on its consent page, types their authenticator app's code (the box's scope needs
it), and continues; glewlwyd sends the browser back with a code, the box exchanges it
(client secret, PKCE) and checks glewlwyd's RS256 ID token against its JWKS. The box asks
for ``openid evr`` and, as a force that enforces MFA would, requires ``otp`` in ``amr``
(glewlwyd lists the factors used: ``["password", "otp"]``). The refusals each have a test
against the suite's own provider (tests/integration/test_sso.py,
tests/security/test_oidc_tokens.py), which can misbehave on request; this module is the
witness that the happy path works with somebody else's provider, plus what a real
directory produces by itself: a user in no mapped group, a user moved out of the group,
and a sign-out that ends the provider's session too."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.support.appliance import Appliance, running_appliance
from tests.support.glewlwyd import (
    CLIENT_ID,
    CLIENT_SECRET,
    SCOPE,
    Glewlwyd,
    GlewlwydUser,
    running_glewlwyd,
)

pytestmark = pytest.mark.e2e

# glewlwyd's pages are a React app that renders after its scripts and translations load;
# on a busy 2-core box that and the round trips take seconds, so each step waits long.
STEP = 20_000


@pytest.fixture(scope="module")
def glewlwyd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Glewlwyd]:
    with running_glewlwyd(tmp_path_factory.mktemp("glewlwyd")) as running:
        yield running


@pytest.fixture(scope="module")
def appliance(glewlwyd: Glewlwyd) -> Iterator[Appliance]:
    with running_appliance(
        public_host="localhost",
        EVR_OIDC_ISSUER=glewlwyd.issuer,
        EVR_OIDC_CLIENT_ID=CLIENT_ID,
        EVR_OIDC_CLIENT_SECRET=CLIENT_SECRET,
        EVR_OIDC_SCOPES=json.dumps(["openid", SCOPE]),
        EVR_OIDC_ROLE_MAP=json.dumps({"grp-handlers": ["handler"]}),
        EVR_OIDC_REQUIRED_AMR=json.dumps(["otp"]),
    ) as running:
        glewlwyd.add_client(f"{running.base_url}/oidc/callback", f"{running.base_url}/login")
        yield running


def _sign_in_at_glewlwyd(page: Page, user: GlewlwydUser) -> None:
    """glewlwyd's login page, its consent for the box's scope, its second factor, and
    its "Continue", which sends the browser back to the box."""
    expect(page).to_have_url(re.compile(r"^http://127\.0\.0\.1:\d+/login\.html\?"), timeout=STEP)
    page.get_by_label("Login").fill(user.username, timeout=STEP)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="OK").click()
    # The first sign-in for this client: glewlwyd asks the person to grant its scopes.
    page.get_by_label("EVR appliance").check(timeout=STEP)
    page.get_by_role("button", name="Grant access").click()
    page.get_by_label("Code").fill(user.code(), timeout=STEP)
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_text("Connection to EVR appliance")).to_be_visible(timeout=STEP)
    page.get_by_role("button", name="Continue").click()


def _audit(appliance: Appliance, action: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(appliance.data_dir / "evr.db")) as db:
        query = "SELECT detail FROM audit_events WHERE action = ? ORDER BY id"
        return [json.loads(row[0]) for row in db.execute(query, (action,))]


def test_a_handler_signs_in_through_glewlwyd_with_a_second_factor_and_lands_on_their_work(
    page: Page, appliance: Appliance, glewlwyd: Glewlwyd
) -> None:
    """A glewlwyd user in the handlers' group asks for the waiting callers, signs in at
    glewlwyd with password and authenticator code, and sees them: an account made just
    in time with the handler role, its sign-in audited with glewlwyd's subject and the
    factors glewlwyd says were used."""
    person = glewlwyd.add_user("pc2001", "Sam's force password", "Sam Force", ["grp-handlers"])
    page.goto(appliance.base_url + "/calls")
    expect(page).to_have_url(re.compile(r"/login\?next=/calls$"))
    page.get_by_role("link", name="Sign in with your Wessex Police account").click()
    _sign_in_at_glewlwyd(page, person)
    expect(page.get_by_role("heading", name="Waiting callers")).to_be_visible(timeout=STEP)
    assert page.url == appliance.base_url + "/calls"
    page.goto(appliance.base_url + "/")
    expect(page.get_by_role("heading", name="Welcome, Sam Force")).to_be_visible()
    expect(page.locator(".lead .tag")).to_have_text(["handler"])

    signed_in = _audit(appliance, "login.succeeded")[-1]
    assert signed_in["iss"] == glewlwyd.issuer, signed_in
    assert signed_in["amr"] == ["password", "otp"], signed_in


def test_a_glewlwyd_user_in_no_mapped_group_is_refused_with_the_box_page(
    page: Page, appliance: Appliance, glewlwyd: Glewlwyd
) -> None:
    """Signed in at glewlwyd (password and second factor), but in a group the role map
    does not name: the box says so, makes no account, and audits the refusal."""
    person = glewlwyd.add_user("lee", "Lee's force password", "Lee Canteen", ["grp-canteen"])
    page.goto(appliance.base_url + "/login")
    page.get_by_role("link", name="Sign in with your Wessex Police account").click()
    _sign_in_at_glewlwyd(page, person)
    expect(page.get_by_text("not in any group that gives access to this box")).to_be_visible(
        timeout=STEP
    )
    assert page.url.startswith(appliance.base_url + "/oidc/callback"), page.url
    refused = _audit(appliance, "login.refused")[-1]
    assert refused["reason"] == "no_role" and refused["iss"] == glewlwyd.issuer, refused
    response = page.goto(appliance.base_url + "/calls")
    assert response is not None
    expect(page).to_have_url(re.compile(r"/login\?next=/calls$"))


def test_a_user_glewlwyd_takes_out_of_the_group_loses_the_box_at_their_next_sign_in(
    page: Page, appliance: Appliance, glewlwyd: Glewlwyd
) -> None:
    """A handler signed in through glewlwyd is moved out of the handlers' group there
    (a leaver). Their next sign-in, still within glewlwyd's own session, comes back with
    no mapped group: the box refuses it, takes the handler role away, and ends the box
    session they already had, so the page that was open goes to sign-in."""
    person = glewlwyd.add_user("pc2002", "Kit's force password", "Kit Force", ["grp-handlers"])
    page.goto(appliance.base_url + "/login")
    page.get_by_role("link", name="Sign in with your Wessex Police account").click()
    _sign_in_at_glewlwyd(page, person)
    expect(page.get_by_role("heading", name="Welcome, Kit Force")).to_be_visible(timeout=STEP)
    open_page = page.context.new_page()  # the box session a leaver would still hold
    open_page.goto(appliance.base_url + "/calls")
    expect(open_page.get_by_role("heading", name="Waiting callers")).to_be_visible()

    glewlwyd.set_groups("pc2002", [])
    page.goto(appliance.base_url + "/oidc/start")
    # glewlwyd still knows the person: it offers to continue without asking again.
    refused = page.get_by_text("not in any group that gives access to this box")
    carry_on = page.get_by_role("button", name="Continue")
    expect(refused.or_(carry_on)).to_be_visible(timeout=STEP)
    if carry_on.is_visible():
        carry_on.click()
    expect(refused).to_be_visible(timeout=STEP)
    assert _audit(appliance, "login.refused")[-1]["reason"] == "no_role"
    changed = _audit(appliance, "user.roles_from_idp")[-1]
    assert changed["from"] == ["handler"] and changed["to"] == [], changed
    assert changed["sessions_ended"] is True, changed

    open_page.reload()
    expect(open_page).to_have_url(re.compile(r"/login\?next=/calls$"))


def test_signing_out_of_the_box_and_then_of_glewlwyd_ends_both_sessions(
    page: Page, appliance: Appliance, glewlwyd: Glewlwyd
) -> None:
    """Sign out on the box, then take its offer to sign out of the force account too.
    The box's session has ended; glewlwyd opens its end-session page for this sign-in
    (it needs the sign-in's ID token for that, ``id_token_hint``: without it, it answers
    with an empty page, which is how this was found), checks the box's return address
    against the client's and ends its own session: signing in again, glewlwyd asks for
    the password."""
    person = glewlwyd.add_user("pc2003", "Jo's force password", "Jo Force", ["grp-handlers"])
    page.goto(appliance.base_url + "/login")
    page.get_by_role("link", name="Sign in with your Wessex Police account").click()
    _sign_in_at_glewlwyd(page, person)
    expect(page.get_by_role("heading", name="Welcome, Jo Force")).to_be_visible(timeout=STEP)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Signed out of this box")).to_be_visible()
    box_login = page.url.rsplit("/", 1)[0] + "/login"
    page.get_by_role("link", name="Sign out of your Wessex Police account too").click()
    expect(page.get_by_role("heading", name="End session")).to_be_visible(timeout=STEP)
    expect(page.get_by_text("The client EVR appliance wishes you to close")).to_be_visible()
    expect(page.get_by_text(f"Then you will be redirected to: {box_login}")).to_be_visible()
    asked = parse_qs(urlsplit(page.url).query)
    assert asked["prompt"] == ["end_session"] and asked["client_id"] == ["evr-box"], page.url
    assert asked["callback_url"] == [box_login], page.url  # checked against the client's
    # Its page ends the session (DELETE of the OpenID session, then of its sign-in);
    # glewlwyd 2.7.5's script then stays on the page instead of following the address.
    with page.expect_response(
        lambda r: r.url.endswith("/api/auth/") and r.request.method == "DELETE", timeout=STEP
    ) as signed_out:
        page.get_by_role("button", name="Logout").click()
    assert signed_out.value.status == 200

    page.goto(appliance.base_url + "/calls")
    expect(page).to_have_url(re.compile(r"/login\?next=/calls$"))
    page.get_by_role("link", name="Sign in with your Wessex Police account").click()
    expect(page.get_by_label("Password")).to_be_visible(timeout=STEP)  # asked again
