"""The media plane: rooms of WebRTC legs, encoded-media relay, recorder, snapshots.

Never imports :mod:`appliance`: it takes SDP in and gives answers, events, stats
and files out.

The names below load on first use (PEP 562): importing one light module such as
:mod:`media.sealed` must not pull in aiortc and PyAV, which every `evr` command would
otherwise pay for at start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from media.config import IceServer as IceServer
    from media.config import RoomConfig as RoomConfig
    from media.errors import LegExistsError as LegExistsError
    from media.errors import MediaError as MediaError
    from media.errors import NoVideoError as NoVideoError
    from media.errors import RecordingError as RecordingError
    from media.errors import RoomClosedError as RoomClosedError
    from media.errors import SdpError as SdpError
    from media.errors import UnknownLegError as UnknownLegError
    from media.events import RoomEvent as RoomEvent
    from media.recorder import RecordingInfo as RecordingInfo
    from media.room import Room as Room
    from media.stats import LegStats as LegStats

_WHERE = {
    "IceServer": "media.config",
    "RoomConfig": "media.config",
    "LegExistsError": "media.errors",
    "MediaError": "media.errors",
    "NoVideoError": "media.errors",
    "RecordingError": "media.errors",
    "RoomClosedError": "media.errors",
    "SdpError": "media.errors",
    "UnknownLegError": "media.errors",
    "RoomEvent": "media.events",
    "RecordingInfo": "media.recorder",
    "Room": "media.room",
    "LegStats": "media.stats",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'media' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
