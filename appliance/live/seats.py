"""A supervisor on a live call: observing it, and the call changing hands.

Who may observe, take over or hand over is decided and recorded by
``services.calls.supervision`` and ``services.calls.handover``; this module only does
what that means to the sockets: an observer's messages and offer are held to watching and
listening, and when the call has a new handler the old console is told why and closed
with a code it explains to its officer (docs/signalling.md, "Close codes").
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import sdp

from appliance.config import Settings
from appliance.db import Database
from appliance.live import protocol
from appliance.live.participants import (
    CALLER,
    GUEST,
    HANDLER,
    OBSERVER,
    VIEWER,
    LiveCall,
    Participant,
)
from appliance.models import User
from appliance.services.calls import states, supervision
from appliance.services.calls.states import CallError
from media.errors import UnknownLegError

REPLACED = 4000
TAKEN_OVER = 4004
HANDED_OVER = 4005
# What an observer may send: it watches and listens, it does not speak for the call.
OBSERVER_MESSAGES = (protocol.Join, protocol.Restart, protocol.End, protocol.Ping)


def check_message(participant: Participant, message: object) -> None:
    if participant.role == OBSERVER and not isinstance(message, OBSERVER_MESSAGES):
        raise CallError("an observer watches and listens: take the call over to act on it")


def check_offer(participant: Participant, offer: sdp.SessionDescription) -> None:
    if participant.role == OBSERVER and any(
        m.direction != "recvonly" for m in offer.media if m.kind in ("audio", "video")
    ):
        raise CallError("an observer's offer only receives (recvonly audio and video)")


def shows_observers(settings: Settings, participant: Participant) -> bool:
    """Whether this page is told who is observing (``observers_shown_to_caller``)."""
    return participant.role != CALLER or settings.observers_shown_to_caller


def told_of_presence(settings: Settings, participant: Participant) -> tuple[str, ...] | None:
    """Who hears that this participant came or went (None: everyone on the call)."""
    if participant.role == OBSERVER and not settings.observers_shown_to_caller:
        return (HANDLER, GUEST, OBSERVER, VIEWER)
    if participant.role == VIEWER and not settings.viewers_shown_to_caller:
        return (HANDLER, GUEST, OBSERVER, VIEWER)
    return None


def observer_left(db: Database, live: LiveCall, participant: Participant) -> None:
    with db.session() as session:
        call = states.get(session, live.public_id)
        supervision.stopped_observing(session, participant.actor, call)


class Handlers:
    """Who handles each live call: whose console is on it, and the handler changing
    while it is live, the caller's media untouched."""

    def __init__(
        self, calls: dict[str, LiveCall], broadcast_state: Callable[[LiveCall], Awaitable[None]]
    ) -> None:
        self.calls = calls
        self.broadcast_state = broadcast_state

    def console_user(self, public_id: str) -> int | None:
        """Whose console is on the call now (the handler's socket), if anyone's."""
        live = self.calls.get(public_id)
        handler = live.participants.get(HANDLER) if live is not None else None
        return handler.user.id if handler is not None and handler.user is not None else None

    async def take_over(self, public_id: str, by: User, reason: str) -> None:
        """A supervisor took the call (``supervision.take_over`` has recorded it): the
        handler's console is told who and why and closed with 4004."""
        message = {"type": "taken_over", "by": by.display_name, "reason": reason}
        why = f"taken over by {by.display_name}"
        await self._change(public_id, by, message, TAKEN_OVER, why)

    async def hand_over(self, public_id: str, to: User, note: str) -> None:
        """A colleague accepted the call (``handover.accept`` has recorded it): the
        console that offered it is told to whom and closed with 4005."""
        message = {"type": "handed_over", "to": to.display_name, "note": note}
        why = f"handed over to {to.display_name}"
        await self._change(public_id, to, message, HANDED_OVER, why)

    async def _change(
        self, public_id: str, to: User, message: dict[str, Any], code: int, why: str
    ) -> None:
        """The old console is told and closed, its media leg leaves, and the caller (and
        any guest) hear that another officer is joining. The caller's leg is not touched;
        its handler slot fills again when the new handler's console joins."""
        live = self.calls.get(public_id)
        if live is None:
            return
        async with live.lock:
            handler = live.participants.get(HANDLER)
            if handler is not None and handler.user is not None and handler.user.id != to.id:
                await handler.send(message)
                await handler.ws.close(code=code, message=why.encode()[:120])
                if live.room is not None and HANDLER in live.room.leg_ids:
                    with contextlib.suppress(UnknownLegError):
                        await live.room.leave(HANDLER)
        await live.broadcast(
            {"type": "officer_changing", "officer": to.display_name}, (CALLER, GUEST)
        )
        await self.broadcast_state(live)
