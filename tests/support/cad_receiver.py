"""A force CAD's webhook receiver on 127.0.0.1, checking what the box sends by the book.

It recomputes the HMAC over the exact bytes received with *its* copy of the secret,
refuses a timestamp more than five minutes off, validates the body against the
``CadEvent`` schema in the box's own OpenAPI document (jsonschema), and takes each
event id once. ``attempts`` keeps every request as received; ``violations`` says
why any was refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp import web

from appliance.config import Settings, load_settings
from appliance.web.api.schemas import openapi_document
from tests.support.live import free_port
from tests.support.sms_gateways import _Server


@dataclass(frozen=True)
class Attempt:
    event_id: str
    timestamp: str
    signature: str
    body: bytes
    status: int


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return (
        "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )


class CadReceiver(_Server):
    path = "/cad/events"

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret.encode()
        self.attempts: list[Attempt] = []
        self.events: dict[str, dict[str, Any]] = {}
        document = openapi_document("https://evr.test")
        self.schema = {
            "$ref": "#/components/schemas/CadEvent",
            "components": document["components"],
        }

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def _refuse(self, status: int, why: str) -> web.Response:
        self.violations.append(why)
        return web.json_response({"error": why}, status=status)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        timestamp = request.headers.get("X-EVR-Timestamp", "")
        given = request.headers.get("X-EVR-Signature", "")
        event_id = request.headers.get("X-EVR-Event-Id", "")
        status = self._status(raw, timestamp, given, event_id, request.content_type)
        self.attempts.append(Attempt(event_id, timestamp, given, raw, status))
        if status >= 400:
            return web.json_response({"error": self.violations[-1]}, status=status)
        return web.json_response({"taken": event_id}, status=status)

    def _status(
        self, raw: bytes, timestamp: str, given: str, event_id: str, content_type: str
    ) -> int:
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            self.violations.append("timestamp missing or more than 5 minutes off")
            return 401
        if not hmac.compare_digest(signature(self.secret, timestamp, raw), given):
            self.violations.append("signature does not match the body")
            return 401
        if content_type != "application/json":
            self.violations.append(f"content type {content_type}")
            return 415
        try:
            body = json.loads(raw)
            jsonschema.validate(body, self.schema)
        except (ValueError, jsonschema.ValidationError) as exc:
            self.violations.append(f"body: {exc}")
            return 400
        if body["id"] != event_id:
            self.violations.append("X-EVR-Event-Id differs from the body's id")
            return 400
        if isinstance(self.mode, int):
            self.violations.append(f"told to answer {self.mode}")
            return self.mode
        self.events.setdefault(event_id, body)  # at least once: the same id is taken once
        return 200


SECRET = "the-box-and-the-cad-share-this-32-chars+"


@asynccontextmanager
async def running_receiver(secret: str = SECRET) -> AsyncIterator[CadReceiver]:
    receiver = CadReceiver(secret)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


def settings_for(tmp_path: Path, database_url: str, receiver: CadReceiver, **more: Any) -> Settings:
    """A test appliance's settings with its CAD webhook pointed at ``receiver``."""
    return load_settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        min_free_bytes=0,
        public_url="https://evr.test",
        port=free_port(),
        cad_webhook_url=receiver.url,
        cad_webhook_secret=SECRET,
        cad_webhook_backoff_seconds=0.2,
        **more,
    )
