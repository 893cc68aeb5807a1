"""Sign-in in a real browser: the first admin, a wrong password, sign-out, a new user."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.appliance import Appliance
from tests.support.browser import signed_in_handler

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "the chief's own long passphrase"


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
    expect(page.get_by_role("heading", name="Welcome, Administrator")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Password changed.")

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
    expect(page.get_by_role("heading", name="Users")).to_be_visible()


def test_a_user_made_by_the_admin_must_choose_a_password(
    browser: Browser, appliance: Appliance
) -> None:
    """An admin of its own (made on the shell), so this test needs nothing of the one
    before it: it may run on an appliance of its own."""
    admin = browser.new_context(ignore_https_errors=True)
    page = signed_in_handler(admin, appliance, "adm7", role="admin")
    page.goto(appliance.base_url + "/admin/users")
    page.get_by_label("Username", exact=True).fill("pc7001")
    page.get_by_label("Display name").fill("Sam Handler")
    page.locator("form[action='/admin/users'] input[value=handler]").check()
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("heading", name="User added")).to_be_visible()
    one_time = page.locator("#one-time-password").inner_text()

    newcomer = browser.new_context(ignore_https_errors=True)
    try:
        handler_page = newcomer.new_page()
        _sign_in(handler_page, appliance, "pc7001", one_time)
        _change_password(handler_page, one_time, "sam's very own passphrase")
        expect(handler_page.get_by_role("heading", name="Welcome, Sam Handler")).to_be_visible()
        expect(handler_page.get_by_role("link", name="Users")).to_have_count(0)
        response = handler_page.goto(appliance.base_url + "/admin/users")
        assert response is not None and response.status == 403
    finally:
        newcomer.close()
        admin.close()
