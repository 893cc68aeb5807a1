"""A statement read in Welsh: the caller's link is Welsh, so the declaration they read and
sign is the catalogue's Welsh one, the statement records the language, and the PDF, read
back with pypdf, holds the Welsh text and says in which language it was read."""

from __future__ import annotations

import io
from datetime import timedelta

from pypdf import PdfReader
from sqlmodel import select

from appliance import i18n
from appliance.config import Settings
from appliance.db import Database
from appliance.models import AuditEvent, Role
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.calls.invites import Consent
from appliance.services.evidence import master_key
from appliance.services.record import statements
from appliance.services.record.statements import Witness
from tests.support.evidence import opened
from tests.support.signatures import signature_png
from tests.support.staff import add_incident, add_user

ACCOUNT = "Tua 21:40 clywais wydr yn torri. Gwelais ddyn mewn hwdi llwyd yn gadael drwy'r giât."


def test_a_welsh_statement_is_signed_and_printed_in_welsh(db: Database, settings: Settings) -> None:
    welsh_declaration = i18n.gettext("cy", settings.statement_declaration)
    assert welsh_declaration != settings.statement_declaration
    with db.session() as session:
        officer = add_user(session, "pc7", Role.HANDLER, display_name="PC 7 Ellis")
        incident = add_incident(session, officer, "CAD/CY/1")
        _, call, _ = invites.create_invite(
            session, Actor("pc7"), incident, officer, timedelta(hours=1), language="cy"
        )
        invites.record_consent(session, call, Consent(True, True, False), "d" * 64, "test")
        statements.save(
            session,
            Actor("pc7"),
            officer,
            incident,
            Witness.clean("Siân Jones", "", "Athrawes", ACCOUNT),
            settings.statement_declaration,
            call,
        )
        sent = statements.send(session, Actor("pc7"), incident, call)
        assert sent.language == "cy" and sent.declaration == welsh_declaration
        signed = statements.sign(
            session,
            settings,
            master_key.open_keyring(settings, session),
            call,
            sent.id or 0,
            "Siân Jones",
            signature_png(),
            "test",
        )
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "statement.signed")
        ).one()
        assert event.detail["language"] == "cy"

    reader = PdfReader(io.BytesIO(opened(settings, db, signed.pdf_path)))
    flat = " ".join(" ".join((p.extract_text() or "") for p in reader.pages).split())
    assert "DATGANIAD TYST" in flat and "Siân Jones" in flat
    assert "Mae'r datganiad hwn yn wir hyd eithaf fy ngwybodaeth" in flat
    assert "clywais wydr yn torri" in flat
    assert "Read and signed in: Cymraeg (cy)" in flat  # for an English-reading court too
    assert "Wedi'i ddarllen a'i lofnodi yn: Cymraeg (cy)" in flat
    assert "This statement is true" not in flat and "WITNESS STATEMENT" not in flat
