"""A responder watching a live call by a view-only link (``services.calls.viewers``).

The viewer's leg is the supervisor observer's media path (the media room's receive-only
"guest" role) held narrower: the viewer's page offers one audio and one video slot, both
``recvonly``, so the relay fills them with the caller alone; it may send only what keeps
its leg up (join, restart, ping) or leave. The close codes its page explains
(docs/signalling.md, "Close codes"): 4006 when the officer revoked the link, 4007 when
the link was refused as the socket opened (the call over, another device, another call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiortc import sdp

from appliance.config import Settings
from appliance.live import protocol
from appliance.live.participants import CALLER, VIEWER, Participant
from appliance.models import ViewerLink
from appliance.services.audit import Actor
from appliance.services.calls import viewers
from appliance.services.calls.states import CallError
from appliance.services.calls.viewers import ViewerProblem

REVOKED = 4006
REFUSED = 4007
# What a viewer may send: it watches and listens to the caller, nothing more.
VIEWER_MESSAGES = (protocol.Join, protocol.Restart, protocol.End, protocol.Ping)
# The close message for each refusal (at most 123 bytes: a WebSocket close reason).
REFUSALS = {
    ViewerProblem.UNKNOWN: "this link does not work",
    ViewerProblem.OTHER_CALL: "this link is for another call",
    ViewerProblem.ENDED: "the call has ended: the link ended with it",
    ViewerProblem.REVOKED: "the officer revoked this link",
    ViewerProblem.NOT_STARTED: "the call has not started",
    ViewerProblem.OTHER_DEVICE: "this link is open on another device",
}
REVOKED_MESSAGE = REFUSALS[ViewerProblem.REVOKED].encode()


@dataclass(eq=False)
class Viewer(Participant):
    """A participant by a viewer link: a leg of its own per link."""

    link: ViewerLink | None = None

    @property
    def leg_id(self) -> str:
        assert self.link is not None
        return viewers.leg_id(self.link)

    @property
    def actor(self) -> Actor:
        assert self.link is not None
        return Actor(f"viewer:{self.link.id}", self.source)

    @property
    def name(self) -> str:
        assert self.link is not None
        return self.link.name

    def presence(self, present: bool) -> dict[str, Any]:
        return super().presence(present) | {"name": self.name}


def check_message(participant: Participant, message: object) -> None:
    if participant.role == VIEWER and not isinstance(message, VIEWER_MESSAGES):
        raise CallError("a viewer link only watches and listens")


def check_offer(participant: Participant, offer: sdp.SessionDescription) -> None:
    if participant.role != VIEWER:
        return
    media = [m for m in offer.media if m.kind in ("audio", "video")]
    if any(m.direction != "recvonly" for m in media):
        raise CallError("a viewer's offer only receives (recvonly audio and video)")
    if sorted(m.kind for m in media) != ["audio", "video"]:
        raise CallError("a viewer's offer receives one audio and one video track: the caller's")


def shown(settings: Settings, participant: Participant) -> bool:
    """Whether this page is told who is viewing (``viewers_shown_to_caller``)."""
    return participant.role != CALLER or settings.viewers_shown_to_caller
