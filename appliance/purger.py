"""The scheduled purge: an asyncio task in the server that runs the retention purge
every ``purge_interval_minutes`` (the work itself in a thread, off the event loop), and
deletes the chunks of uploads a caller left unfinished past their time."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from appliance import metrics
from appliance.config import Settings
from appliance.db import Database
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.evidence import retention
from appliance.services.evidence.master_key import Keyring
from appliance.services.identity import web_sessions
from appliance.services.intake import resumable

log = logging.getLogger("evr.purge")


class Purger:
    def __init__(self, settings: Settings, db: Database, keyring: Keyring) -> None:
        self.settings = settings
        self.db = db
        self.keyring = keyring
        self._task: asyncio.Task[None] | None = None

    def run_once(self) -> int:
        with self.db.session() as session:
            done = retention.purge(
                session, self.settings, self.keyring, Actor(audit.SYSTEM, "purge"), dry_run=False
            )
            resumable.expire(session, self.settings.data_dir)
            policy = web_sessions.SessionPolicy.from_settings(self.settings)
            web_sessions.forget_lapsed_hints(session, policy)
        metrics.EVIDENCE_PURGED.inc(len(done.delete))
        if done.delete:
            log.info("purged evidence past retention", extra={"files": len(done.delete)})
        return len(done.delete)

    async def _forever(self) -> None:
        period = self.settings.purge_interval_minutes * 60
        while True:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("the purge failed; it runs again at the next interval")
            await asyncio.sleep(period)

    async def start(self) -> None:
        if self.settings.purge_interval_minutes > 0:
            self._task = asyncio.get_running_loop().create_task(self._forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
