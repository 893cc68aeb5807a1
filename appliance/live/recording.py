"""What a live call keeps: its recording, started when the handler joins a call the
caller agreed to record, closed and hashed when the call ends, kept as incomplete when
the recorder stops early (a full disk) while the call goes on; and its snapshots.

The media room writes the file; this module keeps the evidence records in step with it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from appliance import metrics
from appliance.config import Settings
from appliance.db import Database
from appliance.live.participants import CALLER, HANDLER, LiveCall
from appliance.models import Recording, Snapshot, User
from appliance.services.calls import guests, states
from appliance.services.calls.states import CallError
from appliance.services.evidence import captures
from appliance.services.evidence.master_key import Keyring
from media import NoVideoError

log = logging.getLogger("evr.live")


class Recordings:
    def __init__(self, settings: Settings, db: Database, keyring: Keyring) -> None:
        self.settings = settings
        self.db = db
        self.keyring = keyring

    async def start_if_agreed(self, live: LiveCall) -> None:
        if live.recording_id is not None or live.room is None:
            return
        with self.db.session() as session:
            call = states.get(session, live.public_id)
            if not call.consent_recording:
                return
            existing = len(states.recordings_of(session, call))
            path = captures.recording_path(self.settings.data_dir, call, existing + 1)
            path.parent.mkdir(parents=True, exist_ok=True)
            recording, data_key = captures.recording_started(session, self.keyring, call, path)
            live.recording_id = recording.id
        try:
            guest_tracks = self.settings.guests_max if self.settings.guests_recorded else 0
            await live.room.start_recording(path, data_key, guest_tracks)
            metrics.RECORDINGS.labels("started").inc()
        except Exception:
            log.exception("recording did not start", extra={"call": live.public_id})
            metrics.RECORDINGS.labels("failed").inc()
            self.interrupted(live)

    async def stop(self, live: LiveCall, failure_counted: bool = False) -> None:
        """Close the file and record its length, size and hash (or keep it as partial)."""
        if live.recording_id is None or live.room is None:
            return
        recording_id = live.recording_id
        try:
            info = await live.room.stop_recording()
        except Exception:
            log.exception("recording did not close cleanly", extra={"call": live.public_id})
            if not failure_counted:
                metrics.RECORDINGS.labels("failed").inc()
            self.interrupted(live)
            return
        live.recording_id = None
        with self.db.session() as session:
            call = states.get(session, live.public_id)
            recording = session.get(Recording, recording_id)
            assert recording is not None
            recording.path = info.path  # an H264 caller is recorded as .mkv, not .webm
            captures.recording_finished(
                session,
                self.keyring,
                call,
                recording,
                duration_s=info.duration_s,
                video_codec=info.video_codec or "",
                audio_codecs=list(info.audio_codecs),
                size_bytes=info.size_bytes,
                sha256=info.sha256,
                tracks=guests.whose_tracks(session, call, info.track_legs),
            )
        metrics.RECORDING_BYTES.inc(info.size_bytes)

    async def cut_short(self, live: LiveCall) -> None:
        """The recorder stopped (a full disk, a write error) while the call goes on: keep
        what was sealed, mark it incomplete, raise the alert metric."""
        async with live.lock:
            if live.recording_id is None:
                return
            log.error("recording cut short; the call goes on", extra={"call": live.public_id})
            await self.stop(live, failure_counted=True)
            metrics.RECORDINGS_INCOMPLETE.inc()

    async def snapshot(self, live: LiveCall | None, user: User, source: str) -> Snapshot:
        """Take a still of the caller's video at full resolution, seal it (in a thread)
        and tell the officers' pages."""
        if live is None or live.room is None or CALLER not in live.room.leg_ids:
            raise CallError("the caller is not connected")
        try:
            jpeg = await live.room.snapshot(CALLER)
        except NoVideoError:
            raise CallError("no video from the caller yet") from None
        snapshot = await asyncio.to_thread(self.keep_snapshot, live, user, jpeg, source)
        await live.broadcast(
            {
                "type": "snapshot",
                "id": snapshot.id,
                "sha256": snapshot.sha256,
                "width": snapshot.width,
                "height": snapshot.height,
                "url": f"/calls/{live.public_id}/snapshots/{snapshot.id}",
                "at": snapshot.taken_at.isoformat(),
            },
            (HANDLER,),
        )
        return snapshot

    def opened(self, live: LiveCall, path: str) -> None:
        """The recorder created its file: the records name it from now on (an H264
        caller's is ``.mkv``, not the ``.webm`` asked for), so the evidence pages and a
        recovery after a crash find it. Blocking: run it in a thread."""
        recording_id = live.recording_id
        if recording_id is None:
            return
        with self.db.session() as session:
            recording = session.get(Recording, recording_id)
            if recording is not None and recording.status == "recording":
                captures.recording_opened(session, self.keyring, recording, Path(path))

    def keep_snapshot(self, live: LiveCall, user: User, jpeg: bytes, source: str) -> Snapshot:
        """Seal a snapshot the handler took (blocking: run it in a thread)."""
        with self.db.session() as session:
            call = states.get(session, live.public_id)
            return captures.store_snapshot(session, self.keyring, call, user, jpeg, source)

    def interrupted(self, live: LiveCall) -> None:
        """Keep what was written as a partial recording (measured and hashed)."""
        recording_id, live.recording_id = live.recording_id, None
        if recording_id is None:
            return
        with self.db.session() as session:
            call = states.get(session, live.public_id)
            recording = session.get(Recording, recording_id)
            if recording is not None:
                captures.recording_interrupted(session, self.keyring, call, recording)
