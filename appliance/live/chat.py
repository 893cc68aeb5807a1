"""A call's text chat: within each sender's rate and the call's cap, stored, then passed on.

For a caller who cannot speak freely, chat is the call; for an attacker it is the
cheapest thing to flood. So the rate is checked in memory before anything else, and the
write runs in a thread, where it waits on no page and no page waits on it.
"""

from __future__ import annotations

import asyncio

from appliance import metrics
from appliance.config import Settings
from appliance.db import Database
from appliance.live import protocol
from appliance.live.participants import LiveCall, Participant
from appliance.models import CallState, ChatMessage
from appliance.services.calls import states
from appliance.services.calls.states import CallError
from appliance.services.identity.throttle import Throttle


class Chat:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.limit = Throttle(settings.chat_per_minute)

    async def post(self, live: LiveCall, participant: Participant, text: str) -> None:
        """Store and pass on a message, within the socket's rate and the call's cap."""
        sender = f"{live.public_id}/{participant.leg_id}"
        if self.limit.blocked(sender):
            metrics.SIGNALLING_ERRORS.labels("rate_limited").inc()
            wait = self.limit.retry_after(sender)
            await participant.send(
                protocol.error("rate_limited", f"too many messages: wait {wait} s")
            )
            return
        self.limit.hit(sender)
        message = await asyncio.to_thread(self._store, live, participant, text)
        if message is None:
            metrics.SIGNALLING_ERRORS.labels("chat_full").inc()
            await participant.send(
                protocol.error("chat_full", "this call holds all the messages it can")
            )
            return
        await live.broadcast(
            {
                "type": "chat",
                "id": message.id,
                "from": participant.role,
                "name": participant.name,
                "text": message.body,
                "at": message.sent_at.isoformat(),
            },
        )

    def _store(self, live: LiveCall, participant: Participant, text: str) -> ChatMessage | None:
        with self.db.session() as session:
            call = states.get(session, live.public_id)
            if CallState(call.state) not in (CallState.WAITING, CallState.CONNECTED):
                raise CallError("the call is not live")
            if states.chat_count(session, call) >= self.settings.chat_max_per_call:
                return None
            return states.add_chat(session, call, participant.role, text, participant.user)
