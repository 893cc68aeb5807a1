"""Item 20: ``/metrics`` and ``/readyz`` are not on the callers' port; ``Server`` names no
version.

The attacks: a stranger on the internet reads ``/metrics`` (how many calls, queue waits,
which routes are used) and ``/readyz`` (free disk, what is failing) from the port callers
use; and reads the ``Server`` header to learn which aiohttp and Python to look up
advisories for, on good requests, on 404s and on a request the HTTP parser rejects.
"""

from __future__ import annotations

import asyncio
import ssl

import pytest

from appliance.config import SettingsError, load_settings
from tests.support.http import FormClient
from tests.support.live import LiveServer, monitoring_listener

pytestmark = pytest.mark.sqlite_only(
    reason="which port serves what, and a header: the database plays no part"
)


async def test_metrics_and_readiness_are_not_on_the_callers_port(
    live_server: LiveServer, caller: FormClient
) -> None:
    """404 for both on the callers' port (liveness still answers there); both answer on
    the monitoring listener, with the appliance's own metrics in the scrape."""
    for path in ("/metrics", "/readyz"):
        response, body = await caller.get(path)
        assert response.status == 404, (path, body[:200])
        assert "evr_http_requests_total" not in body
    response, _ = await caller.get("/healthz")
    assert response.status == 200

    async with monitoring_listener(live_server) as base:
        assert base != live_server.base_url
        monitor = FormClient(base)
        try:
            response, body = await monitor.get("/metrics")
            assert response.status == 200 and "evr_http_requests_total" in body
            response, body = await monitor.get("/readyz")
            assert response.status == 200 and '"status": "ready"' in body
            response, _ = await monitor.get("/login")
            assert response.status == 404, "the monitoring listener serves nothing else"
        finally:
            await monitor.close()


async def _raw_response(host: str, port: int, request: bytes) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), timeout=10)
    finally:
        writer.close()


async def test_the_server_header_names_no_version(
    live_server: LiveServer, caller: FormClient
) -> None:
    """A page, a 404, and a request line the parser rejects: ``Server: EVR`` on each that
    carries the header, never aiohttp's or Python's name and version."""
    for path in ("/login", "/no-such-page"):
        response, _ = await caller.get(path)
        assert response.headers.get("Server") == "EVR", (path, response.headers)
    port = live_server.settings.port
    raw = await _raw_response("127.0.0.1", port, b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.split(b"\r\n")[0].endswith(b" 400 Bad Request"), raw[:200]
    assert b"aiohttp" not in raw.lower() and b"python" not in raw.lower(), raw[:400]
    async with monitoring_listener(live_server) as base:
        monitor = FormClient(base)
        try:
            response, _ = await monitor.get("/metrics")
            assert response.headers.get("Server") == "EVR"
        finally:
            await monitor.close()


def test_the_monitoring_port_cannot_be_the_callers_port() -> None:
    """Setting ``metrics_port`` to ``port`` would put /metrics back on the callers' side:
    start-up refuses it; distinct ports load."""
    with pytest.raises(SettingsError, match="metrics_port must differ from port"):
        load_settings(port=8443, metrics_port=8443)
    assert load_settings(port=8443, metrics_port=9444).metrics_port == 9444
