"""Who is on a live call besides the caller and the handler: guests, observers and
viewers; what each page is told of them, and a guest or viewer sent away by the officer
while everyone else's media goes on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appliance.config import Settings
from appliance.live import seats, viewers
from appliance.live.participants import OBSERVER, VIEWER, LiveCall, Participant
from appliance.models import Call


class Visitors:
    def __init__(
        self, settings: Settings, calls: dict[str, LiveCall], load: Callable[[str], Call]
    ) -> None:
        self.settings = settings
        self.calls = calls
        self.load = load

    def guest_slots(self) -> int:
        """Receive slots a page offers for guests when it joins (docs/media.md): as many
        as may be on the call, so nobody is renegotiated when one arrives."""
        return self.settings.guests_max if self.settings.guests_enabled else 0

    def state_for(self, live: LiveCall, call: Call, participant: Participant) -> dict[str, Any]:
        """The call's state as this page may see it (observers and viewers hidden from
        the caller when the force says so)."""
        return live.state_of(
            call,
            seats.shows_observers(self.settings, participant),
            viewers.shown(self.settings, participant),
        )

    async def broadcast_state(self, live: LiveCall) -> None:
        call = self.load(live.public_id)
        for participant in list(live.participants.values()):
            await participant.send({"type": "state", **self.state_for(live, call, participant)})

    async def notify_presence(
        self, live: LiveCall, participant: Participant, present: bool
    ) -> None:
        told = seats.told_of_presence(self.settings, participant)
        await live.broadcast(participant.presence(present), told, exclude=participant.leg_id)
        if is_visitor(participant):
            await self.broadcast_state(live)

    async def leave(self, live: LiveCall, leg_id: str) -> None:
        """Take the leg out of the media room, if it is still there."""
        async with live.lock:
            if live.room is not None and leg_id in live.room.leg_ids:
                await live.room.leave(leg_id)

    async def remove_guest(self, public_id: str, leg_id: str) -> None:
        """End only the guest's leg: their socket closes, the others' media goes on."""
        live = self.calls.get(public_id)
        if live is None:
            return
        participant = live.participants.get(leg_id)
        if participant is not None:
            await participant.ws.close(code=4001, message=b"removed from the call by the officer")
        await self.leave(live, leg_id)
        await self.broadcast_state(live)

    async def remove_viewer(self, public_id: str, leg_id: str) -> None:
        """A viewer's link was revoked: its socket closes with 4006 (leaving the media
        room as it closes), the call and everyone else's media go on."""
        live = self.calls.get(public_id)
        participant = live.participants.get(leg_id) if live is not None else None
        if participant is not None:
            await participant.ws.close(code=viewers.REVOKED, message=viewers.REVOKED_MESSAGE)


def is_visitor(participant: Participant) -> bool:
    """A guest, an observer or a viewer: a leg of the media room that is neither party."""
    return participant.guest is not None or participant.role in (OBSERVER, VIEWER)
