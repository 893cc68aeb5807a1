"""Local stand-ins for the SMS gateways, speaking their real contracts on 127.0.0.1.

``NotifyContract`` is GOV.UK Notify's ``POST /v2/notifications/sms``: it checks the
Bearer JWT with PyJWT (HS256 signature with the key's secret, ``iss`` = the service
id, ``iat`` within 30 s), validates the JSON body and answers with Notify's own
response and error shapes. ``WebhookGateway`` is a force's gateway that checks the
HMAC over the exact bytes it received and the timestamp.

Either can be told to answer an error (``mode = 400`` ...), to hang (``"hang"``), or
be stopped so its port refuses connections. ``violations`` lists every way one of
our requests broke the contract; a well-behaved client leaves it empty.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import ssl
import time
import uuid
from typing import Any

import jwt
from aiohttp import web

E164_OR_UK = re.compile(r"(\+[1-9]\d{7,14}|0\d{10})")

NOTIFY_ERRORS: dict[int, tuple[str, str]] = {
    400: ("ValidationError", "phone_number Not a UK mobile number"),
    403: ("AuthError", "Error: Your system clock must be accurate to within 30 seconds"),
    429: (
        "RateLimitError",
        "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds",
    ),
    500: ("Exception", "Internal server error"),
}


class _Server:
    path = "/"

    def __init__(self) -> None:
        self.mode: int | str = "ok"
        self.retry_after: str | None = None
        self.requests = 0
        self.accepted: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.tls: ssl.SSLContext | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def start(self, port: int = 0, tls: ssl.SSLContext | None = None) -> _Server:
        """On 127.0.0.1; over HTTPS with ``tls`` (a server context)."""
        app = web.Application()
        app.router.add_post(self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        self.tls = tls
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=tls)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Closes the port: connections are refused until ``start(self.port)``."""
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._release = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.mode == "hang":
            await asyncio.wait_for(self._release.wait(), 30)
        return await self.answer(request)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError


class NotifyContract(_Server):
    path = "/v2/notifications/sms"

    def __init__(self, service_id: str, secret_key: str, template_id: str) -> None:
        super().__init__()
        self.service_id = service_id
        self.secret_key = secret_key
        self.template_id = template_id

    @staticmethod
    def error(status: int, error: str, message: str, **headers: str) -> web.Response:
        body = {"status_code": status, "errors": [{"error": error, "message": message}]}
        return web.json_response(body, status=status, headers=headers)

    def _refuse(self, status: int, error: str, message: str) -> web.Response:
        self.violations.append(f"{status} {error}: {message}")
        return self.error(status, error, message)

    def _check_token(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self._refuse(
                401, "AuthError", "Unauthorized: authentication token must be provided"
            )
        token = auth.removeprefix("Bearer ")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.secret_key,
                algorithms=["HS256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            return self._refuse(403, "AuthError", "Invalid token: API key not found")
        except jwt.PyJWTError as exc:
            return self._refuse(403, "AuthError", f"Invalid token: {exc}")
        if header.get("alg") != "HS256" or header.get("typ") != "JWT":
            return self._refuse(403, "AuthError", "Invalid token: algorithm used is not HS256")
        if claims["iss"] != self.service_id:
            return self._refuse(403, "AuthError", "Invalid token: service not found")
        if abs(time.time() - claims["iat"]) > 30:
            return self._refuse(
                403, "AuthError", "Error: Your system clock must be accurate to within 30 seconds"
            )
        return None

    def _check_body(self, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return self._refuse(400, "BadRequestError", "Invalid JSON supplied in POST data")
        allowed = {"phone_number", "template_id", "personalisation", "reference", "sms_sender_id"}
        extra = set(body) - allowed
        if extra:
            return self._refuse(
                400, "ValidationError", f"Additional properties are not allowed ({sorted(extra)})"
            )
        for field in ("phone_number", "template_id"):
            if not isinstance(body.get(field), str):
                return self._refuse(400, "ValidationError", f"{field} is a required property")
        if not E164_OR_UK.fullmatch(body["phone_number"]):
            return self._refuse(400, "ValidationError", "phone_number Not enough digits")
        if body["template_id"] != self.template_id:
            return self._refuse(400, "BadRequestError", "Template not found")
        personalisation = body.get("personalisation")
        if not isinstance(personalisation, dict) or set(personalisation) != {"body"}:
            return self._refuse(400, "BadRequestError", "Missing personalisation: body")
        if not isinstance(personalisation["body"], str):
            return self._refuse(400, "ValidationError", "personalisation body must be a string")
        if "reference" in body and not isinstance(body["reference"], str):
            return self._refuse(400, "ValidationError", "reference is not of type string")
        return None

    async def answer(self, request: web.Request) -> web.StreamResponse:
        refused = self._check_token(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._refuse(400, "BadRequestError", "Invalid JSON supplied in POST data")
        refused = self._check_body(body)
        if refused is not None:
            return refused
        if isinstance(self.mode, int):
            error, message = NOTIFY_ERRORS[self.mode]
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return self.error(self.mode, error, message, **headers)
        self.accepted.append(body)
        notification_id = str(uuid.uuid4())
        base = "https://api.notifications.service.gov.uk"
        return web.json_response(
            {
                "id": notification_id,
                "reference": body.get("reference"),
                "content": {"body": body["personalisation"]["body"], "from_number": "EVR"},
                "uri": f"{base}/v2/notifications/{notification_id}",
                "template": {
                    "id": self.template_id,
                    "version": 1,
                    "uri": f"{base}/services/{self.service_id}/templates/{self.template_id}",
                },
            },
            status=201,
        )


class WebhookGateway(_Server):
    path = "/sms"

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret.encode()

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
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return self._refuse(401, "timestamp missing or more than 5 minutes off")
        expected = (
            "sha256="
            + hmac.new(self.secret, timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        )
        if not hmac.compare_digest(expected, given):
            return self._refuse(401, "signature does not match the body")
        if request.content_type != "application/json":
            return self._refuse(415, f"content type {request.content_type}")
        try:
            body = json.loads(raw)
        except ValueError:
            return self._refuse(400, "not JSON")
        if not isinstance(body, dict) or set(body) != {"to", "body", "reference"}:
            return self._refuse(400, f"fields {sorted(body) if isinstance(body, dict) else body}")
        if not all(isinstance(v, str) for v in body.values()):
            return self._refuse(400, "fields must be strings")
        if isinstance(self.mode, int):
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            # A gateway's error may echo what it was sent: the box must not keep it.
            return web.json_response(
                {"error": f"cannot send to {body['to']}"}, status=self.mode, headers=headers
            )
        self.accepted.append(body)
        return web.json_response({"id": f"gw-{uuid.uuid4().hex[:12]}"}, status=202)


class Clock:
    """The time the dispatcher and the service see, moved on by the test."""

    def __init__(self) -> None:
        from appliance.models import utcnow

        self.now = utcnow()

    def __call__(self) -> Any:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


def sms_counts() -> tuple[float, float]:
    """(evr_invites_sent_total, evr_invites_failed_total) for channel sms."""
    from prometheus_client import REGISTRY

    labels = {"channel": "sms"}
    sent = REGISTRY.get_sample_value("evr_invites_sent_total", labels) or 0.0
    failed = REGISTRY.get_sample_value("evr_invites_failed_total", labels) or 0.0
    return sent, failed
