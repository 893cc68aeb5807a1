"""Two-party calls through the relay: caller first, handler later."""

import asyncio

from media import Room, RoomConfig, RoomEvent
from tests.support.peers import Client, Events, connect, until


async def test_caller_then_handler_media_flows(
    room: Room, clients: list[Client], events: Events
) -> None:
    caller = Client("caller")
    handler = Client("handler", video=False)
    clients += [caller, handler]
    await connect(room, caller, "caller-1", "caller")
    await until(lambda: "first_video_frame" in events.kinds("caller-1"), what="caller video")
    await connect(room, handler, "handler-1", "handler")

    await until(lambda: handler.video_frames >= 15, what="handler decoding caller video")
    assert handler.video_size == (640, 480)
    seen = handler.video_frames
    await until(lambda: handler.video_frames >= seen + 10, what="frame count still rising")
    await until(lambda: handler.audio_frames >= 25, what="handler hearing caller")
    await until(lambda: caller.audio_frames >= 25, what="caller hearing handler")
    assert "connected" in events.kinds("caller-1")
    assert "connected" in events.kinds("handler-1")
    first = next(e for e in events if e.kind == "first_video_frame")
    assert (first.leg_id, first.detail["width"], first.detail["height"]) == ("caller-1", 640, 480)
    assert all(e.room_id == "room-1" for e in events)


async def test_async_event_handlers_are_run(clients: list[Client]) -> None:
    seen: list[str] = []

    async def on_event(event: RoomEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.kind)

    room = Room("async", RoomConfig(allow_loopback=True), on_event=on_event)
    caller = Client("caller")
    clients.append(caller)
    await connect(room, caller, "caller-1", "caller")
    await until(lambda: "connected" in seen, what="async handler ran")
    await room.close()
    await until(lambda: seen[-1] == "closed", what="closed seen")
