"""Who is on a live call: the participants' sockets and the call's in-memory state.

The database holds what a call is; a ``LiveCall`` holds only what exists while this
process serves it: the media room, the sockets, the recording being written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from appliance.live.weak_line import WeakLine
from appliance.models import Call, GuestInvite, User
from appliance.services.audit import Actor
from appliance.services.calls import guests
from appliance.services.calls.states import CallError
from media.protocols import MediaRoom

log = logging.getLogger("evr.live")

CALLER = "caller"
HANDLER = "handler"
GUEST = "guest"
# A supervisor watching the call: a receive-only leg (the media room's "guest" role, so
# the relay fans the caller and the handler out to it as it does to a guest).
OBSERVER = "observer"
# A responder on a view-only link (``live.viewers``): receives the caller, sends nothing.
VIEWER = "viewer"
# The close code of a socket whose right to the call has gone (signed out, account
# disabled, incident re-assigned); the close message says which.
NO_LONGER_ALLOWED = 4003
# Why a participant may no longer be on the call (None: they still may); asked on every
# message and every few seconds (``CallHub.recheck_seconds``).
Recheck = Callable[[], str | None]


@dataclass(eq=False)
class Participant:
    role: str
    ws: web.WebSocketResponse
    source: str
    user: User | None = None
    guest: GuestInvite | None = None
    recheck: Recheck | None = None

    @property
    def leg_id(self) -> str:
        """The caller and the handler are one leg each; each guest and each observer has
        a leg of their own."""
        if self.guest is not None:
            return guests.leg_id(self.guest)
        if self.role == OBSERVER and self.user is not None:
            return f"{OBSERVER}-{self.user.id}"
        return self.role

    @property
    def actor(self) -> Actor:
        if self.guest is not None:
            return Actor(f"guest:{self.guest.role}", self.source)
        return Actor(self.user.username if self.user else CALLER, self.source)

    async def send(self, message: dict[str, Any]) -> None:
        """Best effort: a socket that has gone is the page's problem, not the call's."""
        if self.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_json(message)

    async def still_allowed(self) -> bool:
        """Re-authorise: False (and the socket closed, saying why) once the right is gone."""
        refusal = await asyncio.to_thread(self.recheck) if self.recheck is not None else None
        if refusal is None:
            return True
        if not self.ws.closed:
            await self.ws.close(code=NO_LONGER_ALLOWED, message=refusal.encode()[:120])
        return False

    async def keep_checking(self, every: float) -> None:
        """Re-authorise a staff socket on a timer too: one that sends nothing (a console
        left open on a call) still closes once its session or its right has gone."""
        if self.recheck is None:
            return
        while not self.ws.closed:
            await asyncio.sleep(every)
            try:
                if not await self.still_allowed():
                    return
            except Exception:  # a failed check is tried again next tick, on every message too
                log.exception("could not re-authorise a socket", extra={"leg": self.leg_id})

    def presence(self, present: bool) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "presence",
            "role": self.role,
            "leg": self.leg_id,
            "present": present,
        }
        if self.guest is not None:
            message |= {"label": guests.label(self.guest), "name": self.guest.name}
        elif self.role == OBSERVER:
            message |= {"name": self.name}
        return message

    @property
    def name(self) -> str:
        if self.guest is not None:
            return f"{self.guest.name} ({guests.label(self.guest)})"
        return self.user.display_name if self.user else "Caller"


@dataclass(eq=False)
class LiveCall:
    public_id: str
    room: MediaRoom | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    recording_id: int | None = None
    admitted_at: float | None = None
    setup_observed: bool = False
    empty_since: float | None = None  # when the caller and the handler had both gone
    # Whose media each leg's receive slots carry (the room's last `routed`, mid → leg),
    # sent again in a `hello`: a page whose socket came back missed what changed meanwhile.
    slots: dict[str, dict[str, str | None]] = field(default_factory=dict)
    sound_only: bool = False  # video switched off both ways (a ``sound_only`` message)
    # What the caller's page sends (its offer's sending sections): a phone whose
    # microphone is refused joins to show and type. None until the caller joins.
    caller_sends: frozenset[str] | None = None
    sound_only_by_box: bool = False  # ... by the box, for the caller's line (weak_line.py)
    weak_line: WeakLine = field(default_factory=WeakLine)
    text_first: bool = False  # messages are the call's main way to talk (``text_first``)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def broadcast(
        self,
        message: dict[str, Any],
        roles: tuple[str, ...] | None = None,
        exclude: str | None = None,
    ) -> None:
        for key, participant in list(self.participants.items()):
            if (roles is None or participant.role in roles) and key != exclude:
                await participant.send(message)

    async def switch_sound_only(self, by: Participant, on: bool, automatic: bool) -> None:
        """The caller or the officer turned video off (or back on) for both: the others'
        pages follow it and say who did; a guest's or observer's page only shows it."""
        if by.role not in (CALLER, HANDLER):
            raise CallError("only the caller or the officer switches the call to sound only")
        self.sound_only, self.sound_only_by_box = on, False
        message = {"type": "sound_only", "on": on, "automatic": automatic, "by": by.role}
        await self.broadcast(message, exclude=by.leg_id)

    async def switch_text_first(self, by: Participant, on: bool) -> None:
        """The officer made messages the main way to talk (or stopped): every page
        follows; the caller's puts the messages first and the cursor in them."""
        if by.role != HANDLER:
            raise CallError("only the officer switches the call to messages first")
        self.text_first = on
        await self.broadcast({"type": "text_first", "on": on}, exclude=by.leg_id)

    async def switch_sound_only_for_the_line(self, on: bool) -> None:
        """The box judged the caller's line (``weak_line``): every page follows, each
        saying the signal was too weak for video (or that video is back)."""
        self.sound_only, self.sound_only_by_box = on, on
        await self.broadcast({"type": "sound_only", "on": on, "automatic": True, "by": "box"})

    def state_of(self, call: Call, observers: bool = True, viewers: bool = True) -> dict[str, Any]:
        """The call as every page on it sees it: its state and who is here. Without
        ``observers`` (the caller's pages, when the force does not show supervisors to
        callers: ``observers_shown_to_caller``) nobody observing is named or counted;
        likewise viewers without ``viewers`` (``viewers_shown_to_caller``)."""
        watching = [p for p in self.participants.values() if p.role == OBSERVER]
        hidden = set() if observers else {p.leg_id for p in watching}
        viewing = [p for p in self.participants.values() if p.role == VIEWER]
        hidden |= set() if viewers else {p.leg_id for p in viewing}
        return {
            "state": call.state,
            "recording": self.recording_id is not None,
            "consentRecording": call.consent_recording,
            "present": sorted(set(self.participants) - hidden),
            "guests": self._guests(),
            "observers": [{"leg": p.leg_id, "name": p.name} for p in watching] if observers else [],
            "viewers": [{"leg": p.leg_id, "name": p.name} for p in viewing] if viewers else [],
            "connectedAt": call.connected_at.isoformat() if call.connected_at else None,
            # A caller back on the same link after ending the call themselves.
            "rejoin": call.rejoin_of_id is not None,
            # Video switched off both ways: a page that (re)joins starts without it.
            "soundOnly": self.sound_only,
            # Messages first: a page that (re)joins starts with them first.
            "textFirst": self.text_first,
            "callerSends": sorted(self.caller_sends) if self.caller_sends is not None else None,
            # The caller's page names who they are talking to (its top bar).
            "officer": next(
                (p.name for p in self.participants.values() if p.role == HANDLER), None
            ),
        }

    def _guests(self) -> list[dict[str, str]]:
        return [
            {
                "leg": p.leg_id,
                "role": p.guest.role,
                "label": guests.label(p.guest),
                "name": p.guest.name,
            }
            for p in self.participants.values()
            if p.guest is not None
        ]
