"""The wire between the appliance process and a media worker: length-prefixed pickles.

Both ends are the same code on the same box, over a socketpair nobody else holds, so
pickle is safe here and carries :class:`~media.RoomConfig`, :class:`~media.RoomEvent`,
``LegStats``, ``RecordingInfo`` and the media errors as they are. Only signalling and
control cross it (SDP, stats, events, a JPEG now and then); media never does.
"""

import asyncio
import pickle
import struct
from typing import Any

_HEADER = struct.Struct("!I")
MAX_MESSAGE = 64 * 1024 * 1024


def pack(message: Any) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


async def read(reader: asyncio.StreamReader) -> Any:
    """The next message; ``asyncio.IncompleteReadError`` at the end of the stream."""
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > MAX_MESSAGE:
        raise ValueError(f"IPC message of {size} bytes refused")
    return pickle.loads(await reader.readexactly(size))  # noqa: S301 (our own socketpair)


def portable_error(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a :class:`MediaError` that says what it was."""
    from media.errors import MediaError

    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301
    except Exception:
        return MediaError(f"{type(exc).__name__}: {exc}")
    return exc
