"""Shared pieces of the attacks in tests/security: a consented caller link, a caller's
HTTPS session with its device cookie, the signalling socket's URL and replies, and
images whose headers promise more than their bytes."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from yarl import URL

from appliance.models import Call, Role
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.calls.invites import Consent
from appliance.services.identity import accounts
from appliance.web import keys
from tests.support.live import LiveServer
from tests.support.staff import add_incident, add_user

DEVICE = "a-hostile-phone-device-token"
VIDEO_ONLY = Consent(True, False, False)


@dataclass
class Invited:
    call: Call
    token: str


def consented_call(
    server: LiveServer,
    owner: str,
    reference: str,
    *,
    consent: bool = True,
    choice: Consent = VIDEO_ONLY,
) -> Invited:
    """A handler ``owner`` (made here unless the box has them), an incident, and a video
    link the caller on ``DEVICE`` agreed to (or, with ``consent=False``, has not yet),
    with the caller's ``choice`` of recording and location."""
    with server.db.session() as session:
        user = accounts.get_by_username(session, owner) or add_user(session, owner, Role.HANDLER)
        incident = add_incident(session, user, reference)
        _, call, token = invites.create_invite(
            session, Actor(owner), incident, user, timedelta(hours=1)
        )
        if consent:
            invites.record_consent(
                session,
                call,
                choice,
                hashlib.sha256(DEVICE.encode()).hexdigest(),
                "",
            )
    return Invited(call, token)


@asynccontextmanager
async def caller_http(
    server: LiveServer, device: str = DEVICE
) -> AsyncIterator[aiohttp.ClientSession]:
    """The caller's phone: the device cookie set at consent, no certificate check."""
    jar = aiohttp.CookieJar(unsafe=True)
    jar.update_cookies({keys.CALLER_DEVICE_COOKIE: device}, response_url=URL(server.base_url))
    async with aiohttp.ClientSession(
        cookie_jar=jar, connector=aiohttp.TCPConnector(ssl=False)
    ) as session:
        yield session


def ws_url(server: LiveServer, path: str) -> str:
    return server.base_url.replace("https://", "wss://") + path


async def receive(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> dict:
    """The next message of type ``wanted`` (others skipped); fails on a closed socket."""
    while True:
        message = await ws.receive(timeout=20)
        assert message.type == aiohttp.WSMsgType.TEXT, (message.type, message.data)
        data = json.loads(message.data)
        if data["type"] == wanted:
            return data


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, rows: int = 1) -> bytes:
    """A valid PNG header declaring ``width``×``height`` RGB pixels, with only ``rows``
    rows of data behind it: a few hundred bytes that promise gigabytes once decoded."""
    raw = zlib.compress(b"".join(b"\x00" + b"\x00" * (width * 3) for _ in range(rows)), 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", raw) + _chunk(b"IEND", b"")
    )
