"""A guest link binds to a device only on an explicit Join, a POST (item 16): a link
previewer (a chat app, a mail scanner) that fetches the link cannot burn it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlmodel import select

from appliance.models import GuestInvite
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, connected_call

pytestmark = pytest.mark.sqlite_only(
    reason="the guest's page and socket are under test, not the database"
)


@pytest.fixture
async def guest_link(live_server: LiveServer) -> AsyncIterator[str]:
    """The path of a fresh guest link on a connected call (no media needed here)."""
    public_id = connected_call(live_server.db, live_server.settings, "pc4", "CAD/GL/1")
    officer = FormClient(live_server.base_url)
    try:
        await officer.sign_in("pc4", PASSWORD)
        await officer.get(f"/calls/{public_id}")
        _, body = await officer.post(
            f"/calls/{public_id}/guests", {"role": "interpreter", "name": "Ana Silva"}
        )
        yield "/g/" + json.loads(body)["link"].rsplit("/g/", 1)[1]
    finally:
        await officer.close()


def _bound(server: LiveServer) -> bool:
    with server.db.session() as session:
        return session.exec(select(GuestInvite)).one().device_hash is not None


def _wss(server: LiveServer, path: str) -> str:
    return server.base_url.replace("https://", "wss://") + "/ws" + path


async def test_a_previewer_opening_the_link_does_not_burn_it(
    live_server: LiveServer, guest_link: str
) -> None:
    """Tried: a previewer fetches the link (and even tries its socket) before the guest.
    Nothing is bound; the guest then presses Join and is on the call; afterwards the
    previewer is the one refused."""
    previewer = FormClient(live_server.base_url)
    guest = FormClient(live_server.base_url)
    try:
        response, page = await previewer.get(guest_link)
        assert response.status == 200 and "Join" in page and "guest-call" not in page
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with previewer.session.ws_connect(_wss(live_server, guest_link)):
                pass
        assert refused.value.status == 403
        assert not _bound(live_server)

        _, page = await guest.get(guest_link)
        response, _ = await guest.post(guest_link, {})  # the explicit Join
        assert response.status == 303 and response.headers["Location"] == guest_link
        assert _bound(live_server)
        response, page = await guest.get(guest_link)
        assert response.status == 200 and "guest-call" in page
        async with guest.session.ws_connect(_wss(live_server, guest_link)) as ws:
            hello = json.loads((await ws.receive(timeout=10)).data)
            assert hello["role"] == "guest"

        response, page = await previewer.get(guest_link)
        assert response.status == 409 and "another device" in page
    finally:
        await previewer.close()
        await guest.close()


async def test_join_needs_the_pages_csrf_token(live_server: LiveServer, guest_link: str) -> None:
    """Tried: a cross-site form posting Join without the page's token binds nothing."""
    stranger = FormClient(live_server.base_url)
    try:
        response, _ = await stranger.post(guest_link, {}, csrf=False)
        assert response.status == 403
        assert not _bound(live_server)
    finally:
        await stranger.close()
