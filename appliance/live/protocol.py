"""The signalling messages, validated on the way in (docs/signalling.md documents them).

One JSON object per WebSocket text message, with a ``type``. Anything malformed,
unknown or too large gets an ``error`` message back; the connection and the call
stay as they were.
"""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Literal

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

MAX_MESSAGE_BYTES = 64 * 1024
# What the WebSocket layer reads at all: between the two a message is read and refused
# with ``too_large``; past this it cannot be skipped, so the socket closes (1009).
MAX_FRAME_BYTES = 1024 * 1024
MAX_SDP_CHARS = 32 * 1024


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Join(_Message):
    """Offer this participant's media (a whole SDP: the box does not trickle ICE)."""

    type: Literal["join"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


class Restart(_Message):
    """A new offer for the same participant, e.g. an ICE restart after a network blip."""

    type: Literal["restart"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


class Chat(_Message):
    type: Literal["chat"]
    text: str = Field(min_length=1, max_length=2000)


class Location(_Message):
    type: Literal["location"]
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    accuracy: float = Field(ge=0, le=100_000)


class SoundOnly(_Message):
    """Video off (``on``) or back on, both ways, pressed by a person or decided by the
    page itself (``automatic``) when video cannot get through; passed to the others."""

    type: Literal["sound_only"]
    on: bool = Field(strict=True)
    automatic: bool = Field(default=False, strict=True)


class TextFirst(_Message):
    """The officer makes messages the call's main way to talk (``on``), for a deaf or
    hard-of-hearing caller or one who cannot speak safely; video and sound stay optional."""

    type: Literal["text_first"]
    on: bool = Field(strict=True)


class End(_Message):
    type: Literal["end"]


class Ping(_Message):
    type: Literal["ping"]


ClientMessage = Annotated[
    Join | Restart | Chat | Location | SoundOnly | TextFirst | End | Ping,
    Field(discriminator="type"),
]
_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
CLIENT_TYPES = (
    "join",
    "restart",
    "chat",
    "location",
    "sound_only",
    "text_first",
    "end",
    "ping",
)


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse(
    raw: str | bytes,
) -> Join | Restart | Chat | Location | SoundOnly | TextFirst | End | Ping:
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            "too_large", f"message of {size} bytes; the limit is {MAX_MESSAGE_BYTES}"
        )
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("bad_json", "the message is not valid JSON") from None
    except RecursionError:
        raise ProtocolError("bad_json", "the message nests too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("bad_message", "a message is a JSON object with a string 'type'")
    if data["type"] not in CLIENT_TYPES:
        raise ProtocolError("unknown_type", f"unknown message type {data['type'][:40]!r}")
    try:
        return _adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "message"
        raise ProtocolError("invalid", f"{where}: {first['msg']}") from None


def error(code: str, message: str) -> dict[str, str]:
    return {"type": "error", "code": code, "message": message}


class SignallingSocket(web.WebSocketResponse):
    """A participant's WebSocket: a message too large to read at all still gets the
    documented ``too_large`` error, sent just before the socket closes with 1009."""

    def __init__(self) -> None:
        super().__init__(heartbeat=20, max_msg_size=MAX_FRAME_BYTES)

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not self.closed:
            with contextlib.suppress(Exception):
                await self.send_json(
                    error("too_large", f"a message over {MAX_FRAME_BYTES} bytes closes the socket")
                )
        return await super().close(code=code, message=message, drain=drain)
