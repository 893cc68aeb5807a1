"""The CAD API's request and response bodies, and the OpenAPI document built from them.

The pydantic models are both the validation and the documentation: the OpenAPI
document's schemas are their JSON Schemas, so the two cannot disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, field_validator

from appliance import dates
from appliance.config.defaults import CAD_EVENTS
from appliance.models import Incident

EXAMPLE_INCIDENT: dict[str, JsonValue] = {
    "cad_reference": "CAD/2026/000123",
    "grade": 3,
    "category": "Burglary",
    "caller_name": "Jane Marple",
    "caller_phone": "07700 900123",
    "summary": "Shed broken into overnight; tools taken.",
    "location_text": "12 High Street, Dorchester",
    "received_at": "2026-11-25T09:30:00Z",
}


class IncidentIn(BaseModel):
    """A new incident from the force's CAD system."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_INCIDENT]})

    cad_reference: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9/_-]+$")
    grade: int = Field(ge=1, le=4, description="1 emergency … 3 scheduled, 4 resolved")
    category: str = Field(min_length=1, max_length=64, description="One of the box's categories")
    caller_name: str = Field(min_length=1, max_length=120)
    caller_phone: str = Field(min_length=5, max_length=20, description="UK or E.164; stored E.164")
    summary: str = Field(default="", max_length=2000)
    location_text: str = Field(default="", max_length=500)
    received_at: AwareDatetime | None = Field(
        default=None,
        description="When CAD took the call: from 2000-01-01, and not ahead of the box's clock "
        "by more than 15 minutes",
    )

    @field_validator("received_at")
    @classmethod
    def _received_at_bounded(cls, value: datetime | None) -> datetime | None:
        return None if value is None else dates.not_after_now("received_at", value)


class IncidentOut(BaseModel):
    id: int
    cad_reference: str
    grade: int
    category: str
    caller_name: str
    caller_phone: str = Field(description="E.164")
    summary: str
    location_text: str
    received_at: datetime
    created_at: datetime
    status: str
    source: str
    eligibility: str = Field(description="unknown, eligible or ineligible")
    assigned: bool = Field(description="Whether a handler has taken it")
    caller_first_screen_seconds: float | None = Field(
        default=None,
        description="Seconds from the incident's creation to the first page the caller's link "
        "showed (null until then); Rapid Video Response's measure",
    )

    @classmethod
    def of(cls, incident: Incident) -> IncidentOut:
        return cls(
            id=incident.id or 0,
            cad_reference=incident.cad_reference,
            grade=incident.grade,
            category=incident.category,
            caller_name=incident.caller_name,
            caller_phone=incident.caller_phone,
            summary=incident.summary,
            location_text=incident.location_text,
            received_at=incident.received_at,
            created_at=incident.created_at,
            status=incident.status,
            source=incident.source,
            eligibility=incident.eligibility,
            assigned=incident.owner_id is not None,
            caller_first_screen_seconds=incident.caller_first_screen_seconds,
        )


class IncidentList(BaseModel):
    incidents: list[IncidentOut]


class ErrorDetail(BaseModel):
    code: str = Field(description="invalid, unauthorised, not_found, conflict, …")
    message: str
    field: str | None = None


class Error(BaseModel):
    error: ErrorDetail


class CadEventIncident(BaseModel):
    cadReference: str
    status: str
    grade: int
    category: str


class CadEvent(BaseModel):
    """What the box sends the CAD (webhook): the same bytes on every attempt."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The event's UUID, also in X-EVR-Event-Id: de-duplicate on it")
    event: Literal[CAD_EVENTS] = Field(  # type: ignore[valid-type]
        description="incident.outcome, incident.closed, call.connected, call.ended or "
        "statement.signed"
    )
    occurredAt: AwareDatetime
    schemaVersion: Literal[1]
    incident: CadEventIncident | None
    data: dict[str, Any] = Field(
        description="By event: outcome {code, label, deploymentNeeded, by}; outcome (code) "
        "on closing; call {id, officer | state, reason}; statement {version, signedAt, "
        "contentSha256, pdfSha256}"
    )


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (IncidentIn, IncidentOut, IncidentList, Error, CadEvent):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def openapi_document(server_url: str) -> dict[str, Any]:
    unauthorised = _error("No API key, or not a live one (the refusal is audited)")
    forbidden = _error(
        "On the client-certificate port: a certificate of the force CA that names no live "
        "API client (the refusal is audited)"
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "EVR appliance CAD API",
            "version": "1",
            "description": "Incidents from the force's Computer Aided Dispatch system. "
            "Authenticate with `Authorization: Bearer <key>` (`evr apikey create NAME`), or "
            "with a client certificate of the force CA on the box's client-certificate port "
            "(`cad_client_port`, docs/cad-api.md).",
        },
        "servers": [{"url": server_url}],
        "security": [{"apiKey": []}, {"clientCertificate": []}],
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer"},
                "clientCertificate": {"type": "mutualTLS"},
            },
            "schemas": _schemas(),
        },
        "webhooks": {"cadEvent": _cad_webhook()},
        "paths": {
            "/api/v1/incidents": {
                "post": {
                    "operationId": "createIncident",
                    "summary": "Create an incident",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/IncidentIn"},
                                "example": EXAMPLE_INCIDENT,
                            }
                        },
                    },
                    "responses": {
                        "201": _ok("Created", "IncidentOut"),
                        "400": _error("Invalid input; the field is named"),
                        "401": unauthorised,
                        "403": forbidden,
                        "409": _error("An incident with that CAD reference exists"),
                        "415": _error("The body is not JSON"),
                    },
                },
                "get": {
                    "operationId": "listIncidents",
                    "summary": "List incidents, newest first, with filters",
                    "parameters": [
                        _param("cad_reference", "string", "CAD/2026/000123"),
                        _param("status", "string", "open"),
                        _param("grade", "integer", 3),
                        _param("category", "string", "Burglary"),
                        _param(
                            "q", "string", "High Street", "Text in reference, summary or location"
                        ),
                        _param("limit", "integer", 50, "At most 500"),
                    ],
                    "responses": {
                        "200": _ok("Incidents", "IncidentList"),
                        "400": _error("An unknown or invalid query parameter"),
                        "401": unauthorised,
                        "403": forbidden,
                    },
                },
            },
            "/api/v1/incidents/{incident_id}": {
                "get": {
                    "operationId": "getIncident",
                    "summary": "One incident",
                    "parameters": [
                        {
                            "name": "incident_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                            "example": 1,
                        }
                    ],
                    "responses": {
                        "200": _ok("The incident", "IncidentOut"),
                        "401": unauthorised,
                        "403": forbidden,
                        "404": _error("No such incident"),
                    },
                },
            },
        },
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def _cad_webhook() -> dict[str, Any]:
    """The box calls the CAD (EVR_CAD_WEBHOOK_URL): documented as an OpenAPI 3.1 webhook."""
    return {
        "post": {
            "operationId": "cadEvent",
            "summary": "An event on an incident, sent by the box to the force's CAD",
            "description": "Signed with HMAC-SHA256 (EVR_CAD_WEBHOOK_SECRET) over "
            "`<X-EVR-Timestamp>.<body bytes>`; refuse a timestamp more than 5 minutes off. "
            "Retried with backoff until a 2xx (401, 403, 408, 429 and 5xx are retried; other "
            "4xx are not). Delivery is at least once: de-duplicate on X-EVR-Event-Id.",
            "security": [],
            "parameters": [
                _header("X-EVR-Event-Id", "The event's id (same on every attempt)"),
                _header("X-EVR-Timestamp", "Unix seconds of this attempt"),
                _header("X-EVR-Signature", "sha256=<hex HMAC of '<timestamp>.<body>'>"),
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/CadEvent"}}
                },
            },
            "responses": {
                "200": {"description": "Taken (any 2xx)"},
                "401": {
                    "description": "Signature refused: retried, so fixing a secret loses nothing"
                },
                "503": {"description": "Busy: retried (Retry-After honoured)"},
            },
        }
    }


def _param(name: str, kind: str, example: Any, description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": kind},
        "example": example,
        "description": description,
    }


QUERY_PARAMETERS = {"cad_reference", "status", "grade", "category", "q", "limit"}
