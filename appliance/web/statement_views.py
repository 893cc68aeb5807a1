"""A witness statement as each page may show it: the officer's view, the caller's, and
what the caller may see of it before it is theirs to sign."""

from __future__ import annotations

from typing import Any

from appliance.models import Statement


def caller_view(statement: Statement) -> dict[str, Any]:
    """What the caller's page shows: the text to read, never the officer's workings."""
    return {
        "id": statement.id,
        "version": statement.version,
        "state": statement.state,
        "witnessName": statement.witness_name,
        "witnessAge": statement.witness_age,
        "witnessOccupation": statement.witness_occupation,
        "account": statement.account,
        "declaration": statement.declaration,
        "signedName": statement.signed_name,
        "signedBy": statement.signed_by,
        "signedAt": statement.signed_at.isoformat() if statement.signed_at else None,
    }


def officer_view(statement: Statement) -> dict[str, Any]:
    return {
        **caller_view(statement),
        "changeRequest": statement.change_request,
        "contentSha256": statement.content_sha256,
        "pdf": pdf_url(statement) if statement.pdf_path else None,
    }


def pdf_url(statement: Statement) -> str:
    return f"/incidents/{statement.incident_id}/statements/{statement.id}.pdf"


def caller_safe(view: dict[str, Any]) -> dict[str, Any]:
    """The caller sees the text only when it is theirs to sign or signed."""
    if view["state"] in ("sent", "signed"):
        return {key: view[key] for key in CALLER_KEYS}
    return {"id": view["id"], "version": view["version"], "state": view["state"]}


CALLER_KEYS = (
    "id",
    "version",
    "state",
    "witnessName",
    "witnessAge",
    "witnessOccupation",
    "account",
    "declaration",
    "signedName",
    "signedBy",
    "signedAt",
)
