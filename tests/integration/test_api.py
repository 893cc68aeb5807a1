"""The CAD API, driven by its own OpenAPI document: every documented operation exercised,
every response checked against the documented schema, undocumented input refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonschema
import pytest
from sqlmodel import select

from appliance.models import AuditEvent
from appliance.services.audit import REPEATED, Actor
from appliance.services.identity import api_keys
from appliance.web import keys
from tests.support.live import LiveServer


@pytest.fixture
async def api(live_server: LiveServer) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    with live_server.db.session() as session:
        _, key = api_keys.create(session, Actor("cli:root", "cli"), "cad")
    async with aiohttp.ClientSession(
        base_url=live_server.base_url,
        connector=aiohttp.TCPConnector(ssl=False),
        headers={"Authorization": f"Bearer {key}"},
    ) as session:
        yield session, key


async def _document(session: aiohttp.ClientSession) -> dict[str, Any]:
    async with session.get("/api/v1/openapi.json") as response:
        assert response.status == 200
        return await response.json()


def _check(document: dict[str, Any], operation: dict[str, Any], status: int, body: Any) -> None:
    """The response's status is documented for the operation, and the body fits its schema."""
    documented = operation["responses"]
    assert str(status) in documented, (operation["operationId"], status, body)
    schema = documented[str(status)]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": document["components"]})


async def test_every_documented_operation_answers_as_documented(
    api: tuple[aiohttp.ClientSession, str], live_server: LiveServer
) -> None:
    session, _ = api
    document = await _document(session)
    jsonschema.Draft202012Validator.check_schema(document["components"]["schemas"]["IncidentIn"])
    exercised = []
    created_id = None
    # POST first, so the GETs have something to find.
    order = sorted(
        (
            (path, method, op)
            for path, ops in document["paths"].items()
            for method, op in ops.items()
        ),
        key=lambda item: item[1] != "post",
    )
    for path, method, operation in order:
        request_path = path.replace("{incident_id}", str(created_id or 1))
        params = {
            p["name"]: str(p["example"])
            for p in operation.get("parameters", [])
            if p["in"] == "query"
        }
        payload = None
        if "requestBody" in operation:
            payload = operation["requestBody"]["content"]["application/json"]["example"]
        async with session.request(
            method.upper(), request_path, params=params, json=payload
        ) as response:
            body = await response.json()
            _check(document, operation, response.status, body)
            assert response.status < 300, (operation["operationId"], body)
        if method == "post":
            created_id = body["id"]
            assert body["caller_phone"] == "+447700900123"
            assert body["source"] == "api:cad" and body["assigned"] is False
        exercised.append(operation["operationId"])
    assert sorted(exercised) == ["createIncident", "getIncident", "listIncidents"]
    with live_server.db.session() as session_db:
        event = session_db.exec(
            select(AuditEvent).where(AuditEvent.action == "incident.created")
        ).one()
        assert event.actor == "api:cad"


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"colour": "blue"}, 400, "colour"),  # undocumented field
        ({"grade": 7}, 400, "grade"),
        ({"grade": "three"}, 400, "grade"),
        ({"caller_phone": "12345"}, 400, None),
        ({"category": "Piracy"}, 400, None),
        ({"received_at": "2026-11-25T09:30:00"}, 400, "received_at"),  # no time zone
        ({"cad_reference": ""}, 400, "cad_reference"),
    ],
)
async def test_invalid_incidents_are_refused_with_a_clear_error_and_nothing_written(
    api: tuple[aiohttp.ClientSession, str],
    live_server: LiveServer,
    change: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    session, _ = api
    document = await _document(session)
    operation = document["paths"]["/api/v1/incidents"]["post"]
    payload = {**operation["requestBody"]["content"]["application/json"]["example"], **change}
    async with session.post("/api/v1/incidents", json=payload) as response:
        body = await response.json()
        assert response.status == status, body
        _check(document, operation, response.status, body)
        assert body["error"]["message"]
        if field:
            assert body["error"]["field"] == field
    async with session.get("/api/v1/incidents") as response:
        assert (await response.json())["incidents"] == []


async def test_duplicates_unknown_parameters_and_wrong_content_type(
    api: tuple[aiohttp.ClientSession, str],
) -> None:
    session, _ = api
    document = await _document(session)
    create = document["paths"]["/api/v1/incidents"]["post"]
    example = create["requestBody"]["content"]["application/json"]["example"]
    async with session.post("/api/v1/incidents", json=example) as response:
        assert response.status == 201
    async with session.post("/api/v1/incidents", json=example) as response:
        body = await response.json()
        assert response.status == 409 and "already exists" in body["error"]["message"]
        _check(document, create, 409, body)
    async with session.post(
        "/api/v1/incidents", data=json.dumps(example), headers={"Content-Type": "text/plain"}
    ) as response:
        assert response.status == 415
        _check(document, create, 415, await response.json())
    listing = document["paths"]["/api/v1/incidents"]["get"]
    async with session.get("/api/v1/incidents", params={"sort": "grade"}) as response:
        body = await response.json()
        assert response.status == 400 and body["error"]["field"] == "sort"
        _check(document, listing, 400, body)
    async with session.get(
        "/api/v1/incidents", params={"cad_reference": example["cad_reference"]}
    ) as response:
        assert len((await response.json())["incidents"]) == 1
    one = document["paths"]["/api/v1/incidents/{incident_id}"]["get"]
    async with session.get("/api/v1/incidents/99999") as response:
        _check(document, one, response.status, await response.json())
        assert response.status == 404
    async with session.get("/api/v1/nothing-here") as response:
        assert response.status == 404 and "error" in await response.json()


async def test_bad_revoked_and_missing_keys_are_refused_and_audited(
    api: tuple[aiohttp.ClientSession, str], live_server: LiveServer
) -> None:
    session, key = api
    async with session.get("/api/v1/incidents") as response:
        assert response.status == 200
    async with aiohttp.ClientSession(
        base_url=live_server.base_url, connector=aiohttp.TCPConnector(ssl=False)
    ) as anonymous:
        for headers in (
            {},
            {"Authorization": "Bearer evr_forged-key-value"},
            {"Authorization": f"Basic {key}"},
        ):
            async with anonymous.get("/api/v1/incidents", headers=headers) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert (await response.json())["error"]["code"] == "unauthorised"
        # A browser session is no API key: a signed-in cookie does not open the API.
        with live_server.db.session() as db:
            api_keys.revoke(db, Actor("cli:root", "cli"), "cad")
    async with session.get("/api/v1/incidents") as response:
        assert response.status == 401
    # One row per source a minute: the first refusal in full, the others counted once
    # the minute closes (here: at once, by flushing everything).
    assert live_server.app is not None
    with live_server.db.session() as db:
        live_server.app[keys.GUARDS].tally.flush(db, everything=True)
    with live_server.db.session() as db:
        refusals = db.exec(select(AuditEvent).where(AuditEvent.action == "api.refused")).all()
        assert [e.detail["reason"] for e in refusals] == ["missing"]
        repeated = db.exec(select(AuditEvent).where(AuditEvent.action == REPEATED)).one()
        assert repeated.detail["action"] == "api.refused" and repeated.detail["count"] == 3
        assert all(key not in json.dumps(e.detail) + e.object_id for e in [*refusals, repeated])
