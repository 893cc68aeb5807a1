"""A statement read in Welsh: the caller's link is Welsh, so the declaration they read and
sign is the catalogue's Welsh one, the statement records the language, and the PDF, read
back with pypdf, holds the Welsh text and says in which language it was read. A statement
in Arabic is shaped in its PDF: its letters joined and its words read back in order."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from pypdf import PdfReader
from sqlmodel import select

from appliance import i18n
from appliance.config import Settings
from appliance.config.defaults import DEFAULT_DECLARATION
from appliance.db import Database
from appliance.models import AuditEvent, Incident, Role, Statement
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.calls.invites import Consent
from appliance.services.evidence import master_key
from appliance.services.record import statement_pdf, statements
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


ARABIC_ACCOUNT = "سمعت صوت زجاج يتكسر حوالي الساعة 21:40. رأيت رجلاً يرتدي سترة رمادية."


def _pdf_text(language: str, name: str, account: str) -> str:
    statement = Statement(
        incident_id=1,
        version=1,
        witness_name=name,
        account=account,
        declaration=i18n.gettext(language, DEFAULT_DECLARATION),
        officer_id=1,
        signed_at=datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
        signed_name=name,
        language=language,
        content_sha256="a" * 64,
    )
    pdf = statement_pdf.render(statement, Incident(cad_reference="CAD/AR/1"), None, "PC 7 Ellis")
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join((p.extract_text() or "") for p in reader.pages).split())


def test_an_arabic_statement_pdf_is_shaped_and_reads_back_in_order() -> None:
    """Tried: an Arabic statement rendered straight to PDF, no database. Unshaped (fpdf2
    without HarfBuzz) each letter is printed isolated in the order it is seen, and pypdf
    reads every Arabic word back reversed ("جاجز توص تعمس"); shaped, the PDF carries the
    text in its logical order. An English statement with an Arabic name is shaped too,
    and its English still reads as written."""
    flat = _pdf_text("ar", "سارة أحمد", ARABIC_ACCOUNT)
    assert "سمعت صوت زجاج يتكسر" in flat, flat
    assert "سارة أحمد" in flat, flat
    assert "هذه الإفادة صحيحة" in flat, flat  # the translated declaration
    assert "العربية" in flat and "Read and signed in" in flat, flat
    assert "تعمس" not in flat, "a word read back reversed: the text was not shaped"

    english = _pdf_text("en", "سارة أحمد", "About 21:40 I heard glass breaking.")
    assert "سارة أحمد" in english and "About 21:40 I heard glass breaking." in english, english
