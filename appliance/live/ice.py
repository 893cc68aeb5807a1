"""The ICE servers a call's browsers and media room are given: the box's own STUN, and
TURN with short-lived REST credentials minted per call (never a public server)."""

from __future__ import annotations

from typing import Any

from appliance.config import Settings
from media import IceServer
from media.ice import turn_credentials


def ice_servers(settings: Settings, public_id: str) -> list[IceServer]:
    servers = []
    if settings.stun_urls:
        servers.append(IceServer(urls=list(settings.stun_urls)))
    if settings.turn_urls and settings.turn_secret:
        username, credential = turn_credentials(
            settings.turn_secret.get_secret_value(),
            f"call-{public_id}",
            ttl_s=settings.turn_ttl_seconds,
        )
        servers.append(
            IceServer(urls=list(settings.turn_urls), username=username, credential=credential)
        )
    return servers


def browser_ice_server(server: IceServer) -> dict[str, Any]:
    """The shape RTCPeerConnection takes in a browser."""
    entry: dict[str, Any] = {"urls": list(server.urls)}
    if server.username:
        entry["username"] = server.username
        entry["credential"] = server.credential
    return entry
