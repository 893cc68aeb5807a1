"""The media plane: rooms of WebRTC legs, encoded-media relay, recorder, snapshots.

Never imports :mod:`appliance`: it takes SDP in and gives answers, events, stats
and files out.
"""

from media.config import IceServer, RoomConfig
from media.errors import (
    LegExistsError,
    MediaError,
    NoVideoError,
    RecordingError,
    RoomClosedError,
    SdpError,
    UnknownLegError,
)
from media.events import RoomEvent
from media.recorder import RecordingInfo
from media.room import Room
from media.stats import LegStats

__all__ = [
    "IceServer",
    "LegExistsError",
    "LegStats",
    "MediaError",
    "NoVideoError",
    "RecordingError",
    "RecordingInfo",
    "Room",
    "RoomClosedError",
    "RoomConfig",
    "RoomEvent",
    "SdpError",
    "UnknownLegError",
]
