"""Fixtures for the media tests: a room with loopback ICE and event capture."""

from collections.abc import AsyncIterator

import pytest

from media import Room, RoomConfig
from tests.support.peers import Client, Events


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
