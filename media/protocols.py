"""What a media room offers its owner, whoever runs it.

Three classes keep this shape: :class:`media.Room` (in this process),
:class:`media.workers.RoomProxy` (a room in a worker process) and the benchmark's
``BaselineRoom`` (aiortc's default pipeline). The appliance's hub holds a
``MediaRoom`` and never asks which one it has.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from media.recorder import RecordingInfo
from media.stats import LegStats


@runtime_checkable
class MediaRoom(Protocol):
    @property
    def leg_ids(self) -> list[str]: ...

    @property
    def recording(self) -> bool: ...

    async def join(self, leg_id: str, role: str, offer_sdp: str) -> str: ...

    async def renegotiate(self, leg_id: str, offer_sdp: str) -> str: ...

    async def leave(self, leg_id: str) -> None: ...

    async def start_recording(
        self, path: str | os.PathLike[str], data_key: bytes | None = None, guest_tracks: int = 0
    ) -> None: ...

    async def stop_recording(self) -> RecordingInfo: ...

    async def snapshot(self, leg_id: str) -> bytes: ...

    async def stats(self) -> dict[str, LegStats]: ...

    async def close(self) -> RecordingInfo | None: ...
