"""Where the caller is: each fix the caller's page sends, kept and shown to the handler.

The fix is kept (or dropped when it came too soon, or after a single share) by
``services.intake.locations``; the grid reference is computed there too, and the OSTN15
grid is loaded once, off the event loop, before the first one.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from appliance import grid
from appliance.config import Settings
from appliance.db import Database
from appliance.live import protocol
from appliance.live.participants import CALLER, HANDLER, LiveCall, Participant
from appliance.services.calls import states
from appliance.services.calls.states import CallError
from appliance.services.intake import locations


class Whereabouts:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    async def share(
        self, live: LiveCall, participant: Participant, lat: float, lon: float, accuracy: float
    ) -> None:
        """Keep the caller's fix and show it to the handler with its grid reference."""
        if participant.role != CALLER:
            raise CallError("only the caller shares a location")
        await asyncio.to_thread(grid.warm)
        every = timedelta(seconds=self.settings.location_update_seconds)
        try:
            with self.db.session() as session:
                call = states.get(session, live.public_id)
                fix = locations.record_fix(
                    session, call, lat, lon, accuracy, self.settings.location_bounds, every
                )
        except locations.LocationRefused as exc:
            await participant.send(protocol.error("location_refused", str(exc)))
            return
        if fix is None:
            return
        await live.broadcast(
            {
                "type": "location",
                "latitude": lat,
                "longitude": lon,
                "accuracy": accuracy,
                "easting": fix.easting,
                "northing": fix.northing,
                "gridReference": str(grid.GridReference(fix.easting, fix.northing))
                if fix.easting is not None and fix.northing is not None
                else None,
                "at": fix.fixed_at.isoformat(),
            },
            (HANDLER,),
        )
