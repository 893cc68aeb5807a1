"""The CAD API by client certificate: its own listener (web/cad_listener.py) requiring a
certificate of the force CA, each verified certificate mapped to an API client; the
main port never asks for one."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from appliance.config import Settings, SettingsError, load_settings
from appliance.models import AuditEvent, Incident
from appliance.services.audit import Actor
from appliance.services.identity import api_keys
from appliance.web import cad_listener
from appliance.web.api.schemas import openapi_document
from tests.support.live import LiveServer, free_port
from tests.support.pki import TestCa, client_context

pytestmark = pytest.mark.sqlite_only(reason="TLS and the certificate map, not the database")


@pytest.fixture
def force_ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path, "force")


@pytest.fixture
def settings(tmp_path: Path, database_url: str, force_ca: TestCa) -> Settings:
    return load_settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        min_free_bytes=0,
        public_url="https://evr.test",
        host="127.0.0.1",
        port=free_port(),
        cad_client_ca_file=force_ca.ca_file,
        cad_client_port=free_port(),
        cad_client_certificates={
            "CN=cad-01,O=Test Force": "cad",
            "DNS:cad-02.force.test": "cad",
        },
    )


@pytest.fixture
async def listener(live_server: LiveServer, settings: Settings) -> AsyncIterator[str]:
    """The client-certificate listener beside the live server, as `evr serve` starts it,
    and an API client named `cad` for the map to name."""
    with live_server.db.session() as session:
        api_keys.create(session, Actor("cli:root", "cli"), "cad")
    assert live_server.app is not None
    runner = await cad_listener.start(live_server.app, settings)
    assert runner is not None
    try:
        yield f"https://127.0.0.1:{settings.cad_client_port}"
    finally:
        await runner.cleanup()


def _example() -> dict[str, Any]:
    post = openapi_document("https://evr.test")["paths"]["/api/v1/incidents"]["post"]
    example: dict[str, Any] = post["requestBody"]["content"]["application/json"]["example"]
    return example


async def _post(
    base: str, cert: tuple[Path, Path] | None, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    connector = aiohttp.TCPConnector(ssl=client_context(cert))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(f"{base}/api/v1/incidents", json=body) as response,
    ):
        return response.status, await response.json()


def _incidents(live_server: LiveServer) -> list[Incident]:
    with live_server.db.reader() as session:
        return list(session.exec(select(Incident)).all())


async def test_a_certificate_of_the_force_ca_in_the_map_creates_an_incident(
    live_server: LiveServer, listener: str, force_ca: TestCa
) -> None:
    """No Authorization header at all: the certificate (by subject, and another by its
    DNS name) is the client `cad`, as the incident's source and the audit trail say."""
    status, body = await _post(listener, force_ca.issue("cad-01"), _example())
    assert status == 201, body
    second = {**_example(), "cad_reference": "CAD/CERT/2"}
    status, body = await _post(listener, force_ca.issue("other", dns="cad-02.force.test"), second)
    assert status == 201, body
    incidents = _incidents(live_server)
    assert [i.source for i in incidents] == ["api:cad", "api:cad"]
    with live_server.db.reader() as session:
        created = session.exec(
            select(AuditEvent).where(AuditEvent.action == "incident.created")
        ).all()
        assert {e.actor for e in created} == {"api:cad"}


@pytest.mark.parametrize(
    "which", ["another CA", "expired", "none"], ids=["another-ca", "expired", "no-certificate"]
)
async def test_the_handshake_refuses_a_certificate_the_force_ca_did_not_vouch_for(
    live_server: LiveServer, listener: str, force_ca: TestCa, tmp_path: Path, which: str
) -> None:
    """A certificate from another CA (same subject as a mapped one), one of the force CA
    that expired an hour ago, and none at all: the TLS handshake fails, no HTTP answer,
    no incident."""
    cert = {
        "another CA": lambda: TestCa(tmp_path, "rogue").issue("cad-01"),
        "expired": lambda: force_ca.issue("cad-01", expired=True),
        "none": lambda: None,
    }[which]()
    with pytest.raises((aiohttp.ClientConnectionError, ssl.SSLError)):
        await _post(listener, cert, _example())
    assert _incidents(live_server) == []


async def test_a_good_certificate_not_in_the_map_is_refused_403_and_audited(
    live_server: LiveServer, listener: str, force_ca: TestCa
) -> None:
    status, body = await _post(listener, force_ca.issue("stranger"), _example())
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert _incidents(live_server) == []
    with live_server.db.reader() as session:
        refused = session.exec(select(AuditEvent).where(AuditEvent.action == "api.refused")).one()
    assert refused.object_type == "client_certificate"
    assert refused.object_id == "CN=stranger,O=Test Force"
    assert refused.detail["reason"] == "unmapped"


async def test_a_mapped_certificate_of_a_revoked_client_is_refused(
    live_server: LiveServer, listener: str, force_ca: TestCa
) -> None:
    with live_server.db.session() as session:
        api_keys.revoke(session, Actor("cli:root", "cli"), "cad")
    status, _ = await _post(listener, force_ca.issue("cad-01"), _example())
    assert status == 403
    assert _incidents(live_server) == []


async def test_the_listener_serves_only_the_cad_api_and_the_main_port_asks_for_no_certificate(
    live_server: LiveServer, listener: str, force_ca: TestCa
) -> None:
    """Staff pages are not on the certificate port; the main port's handshake completes
    with no certificate (a browser is never asked), and there the API wants its key."""
    connector = aiohttp.TCPConnector(ssl=client_context(force_ca.issue("cad-01")))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(f"{listener}/login") as response,
    ):
        assert response.status == 404
    status, _ = await _post(live_server.base_url, None, _example())
    assert status == 401


def test_the_client_ca_and_its_map_are_set_together(tmp_path: Path, force_ca: TestCa) -> None:
    with pytest.raises(SettingsError, match="set together"):
        load_settings(data_dir=tmp_path, cad_client_ca_file=force_ca.ca_file)
    not_a_ca = tmp_path / "junk.pem"
    not_a_ca.write_text("not a certificate")
    with pytest.raises(SettingsError, match="cannot use"):
        load_settings(
            data_dir=tmp_path, cad_client_ca_file=not_a_ca, cad_client_certificates={"x": "y"}
        )


def test_the_client_certificate_port_is_its_own(tmp_path: Path, force_ca: TestCa) -> None:
    """Not the monitoring port (both defaulted to 8444 once: the box could not start) nor
    the main one; the default is free of both."""
    mapped = {"cad_client_ca_file": force_ca.ca_file, "cad_client_certificates": {"x": "y"}}
    assert load_settings(data_dir=tmp_path, **mapped).cad_client_port == 8445
    for clash in ({"metrics_port": 9001}, {"port": 9001}):
        with pytest.raises(SettingsError, match="cad_client_port must differ"):
            load_settings(data_dir=tmp_path, cad_client_port=9001, **clash, **mapped)
