"""Three rooms, one shape: the in-process room, the worker's proxy and the benchmark's
baseline room all offer what the hub uses (media.protocols.MediaRoom)."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

import pytest

from media import Room, RoomConfig
from media.protocols import MediaRoom
from media.workers import RoomProxy

BENCH = Path(__file__).resolve().parents[2] / "bench" / "baseline_room.py"


def _baseline_room() -> type[Any]:
    spec = importlib.util.spec_from_file_location("baseline_room", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BaselineRoom  # type: ignore[no-any-return]


def _members() -> list[str]:
    return [name for name in vars(MediaRoom) if not name.startswith("_")]


@pytest.mark.parametrize("kind", ["Room", "RoomProxy", "BaselineRoom"])
def test_every_room_offers_what_the_hub_uses(kind: str) -> None:
    cls = {"Room": Room, "RoomProxy": RoomProxy, "BaselineRoom": None}[kind] or _baseline_room()
    assert len(_members()) == 10
    for name in _members():
        wanted, offered = getattr(MediaRoom, name), getattr(cls, name, None)
        assert offered is not None, f"{kind} has no {name}"
        if isinstance(wanted, property):
            assert isinstance(offered, property), f"{kind}.{name} is not a property"
            continue
        assert inspect.iscoroutinefunction(offered) == inspect.iscoroutinefunction(wanted), name
        needed = [p for p in inspect.signature(wanted).parameters.values() if p.name != "self"]
        args = [object() for p in needed if p.default is inspect.Parameter.empty]
        inspect.signature(offered).bind(object(), *args)  # raises if the call would not fit


def test_an_in_process_room_is_a_media_room() -> None:
    assert isinstance(Room("r", RoomConfig()), MediaRoom)
