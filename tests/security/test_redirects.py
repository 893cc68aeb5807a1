"""``/login?next=`` leads only to a path on this box (item 15): what a browser would read
as another site is refused, whatever the spelling, and a real path still works."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from appliance.models import Role
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the redirect rule is the sign-in handler's Python, not database work"
)

# Each one was, or could be, read by a browser as a jump to another host: a tab or
# newline is dropped by the URL parser (``/\t/evil`` is ``//evil``), a backslash is a
# slash, and an absolute or protocol-relative URL names a host outright.
NEXT_RE = re.compile(r'name="next" value="([^"]*)"')
HOSTILE = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    "//evil.example",
    "/\\evil.example",
    "/\\/evil.example",
    "https://evil.example/",
    "https:/evil.example",
    "javascript:alert(1)",
    "/\x00/evil.example",
    "/\x7f/evil.example",
    "evil.example",
    "",
]


async def _sign_in_with_next(server: LiveServer, next_path: str) -> str:
    client = FormClient(server.base_url)
    try:
        await client.get("/login?next=" + quote(next_path, safe=""))
        response, _ = await client.post(
            "/login", {"username": "pc1", "password": PASSWORD, "next": next_path}
        )
        assert response.status == 303, response.status
        return response.headers["Location"]
    finally:
        await client.close()


async def test_the_reported_attack_lands_home_after_a_real_sign_in(
    live_server: LiveServer,
) -> None:
    """Tried: ``/login?next=/%09/evil.example`` and a real sign-in, which used to answer
    ``Location: /<TAB>/evil.example`` (a browser drops the tab: ``//evil.example``)."""
    with live_server.db.session() as session:
        add_user(session, "pc1", Role.HANDLER)
    assert await _sign_in_with_next(live_server, "/\t/evil.example") == "/"


async def test_every_hostile_spelling_is_cleaned_before_the_form_carries_it(
    live_server: LiveServer,
) -> None:
    """Each spelling in HOSTILE, as the sign-in page draws it: its hidden ``next`` is
    ``/`` (the same rule judges the posted form)."""
    client = FormClient(live_server.base_url)
    try:
        for value in HOSTILE:
            _, page = await client.get("/login?next=" + quote(value, safe=""))
            assert NEXT_RE.findall(page) == ["/"], value
            assert "evil.example" not in page
    finally:
        await client.close()


async def test_a_path_on_this_box_is_still_followed(live_server: LiveServer) -> None:
    with live_server.db.session() as session:
        add_user(session, "pc1", Role.HANDLER)
    assert await _sign_in_with_next(live_server, "/incidents?status=open") == (
        "/incidents?status=open"
    )
