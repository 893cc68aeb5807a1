"""What a room tells the appliance about its legs."""

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RoomEvent:
    """One thing that happened in a room.

    ``kind`` is one of: ``connected``, ``disconnected``, ``failed``, ``closed``,
    ``first_video_frame``, ``recording_started``, ``recording_stopped``,
    ``recording_failed``. ``leg_id`` is ``None`` for room-wide events.
    """

    room_id: str
    leg_id: str | None
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
