"""Fixtures for the media tests: a room with loopback ICE and event capture."""

from collections.abc import AsyncIterator

import pytest

from media import Room, RoomConfig, RoomEvent
from tests.media.support import Client


class Events(list[RoomEvent]):
    def kinds(self, leg_id: str | None = None) -> list[str]:
        return [e.kind for e in self if leg_id is None or e.leg_id == leg_id]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
async def room(events: Events) -> AsyncIterator[Room]:
    room = Room("room-1", RoomConfig(ice_servers=[], allow_loopback=True), on_event=events.append)
    yield room
    await room.close()


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        await client.close()
