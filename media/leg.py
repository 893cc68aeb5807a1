"""A leg: one participant's identity in a room, outliving any one peer connection."""

import asyncio
import time

from media.peer import Peer
from media.relay import ForwardTrack, Source
from media.snapshot import KeyframeBuffer

ROLES = ("caller", "handler", "guest")


class Leg:
    """One participant (caller, handler or guest) and their current :class:`Peer`.

    An ICE restart swaps the peer but keeps the leg, so the room's routing, events
    and stats keep naming the same participant.
    """

    def __init__(self, leg_id: str, role: str, seq: int, peer: Peer, max_frames: int) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        self.leg_id = leg_id
        self.role = role
        self.seq = seq
        self.peer = peer
        self.state = "new"
        self.joined_at = time.time()
        self.state_since = time.monotonic()
        self.first_video_reported = False
        self.keyframes = KeyframeBuffer(max_frames)
        self.lock = asyncio.Lock()
        self._snapshot_source: Source | None = None
        # What the owner was last told each outgoing track carries (mid → leg id).
        self.slots_reported: dict[str, str | None] = {}

    def sources(self, kind: str) -> list[Source]:
        return [s for s in self.peer.sources if s.kind == kind]

    def outputs(self, kind: str) -> list[ForwardTrack]:
        return [t for t in self.peer.outputs if t.kind == kind]

    def video_source(self) -> Source | None:
        return next(iter(self.sources("video")), None)

    def audio_source(self) -> Source | None:
        return next(iter(self.sources("audio")), None)

    def last_arrival(self) -> float | None:
        arrivals = [s.last_arrival for s in self.peer.sources if s.last_arrival is not None]
        return max(arrivals) if arrivals else None

    def set_state(self, state: str) -> bool:
        """Record ``state``; True if it changed."""
        if state == self.state:
            return False
        self.state = state
        self.state_since = time.monotonic()
        return True

    def follow_video(self) -> None:
        """Keep the snapshot buffer on the leg's current video source."""
        source = self.video_source()
        if source is self._snapshot_source:
            return
        if self._snapshot_source is not None:
            self._snapshot_source.unsubscribe(self.keyframes)
        self._snapshot_source = source
        if source is not None:
            source.subscribe(self.keyframes)
