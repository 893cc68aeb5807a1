"""Item 19: statements are kept in a folder named by the incident's id.

The attack: the CAD (or whoever holds its key) creates ``CAD/X/1`` and ``CAD_X_1``; both
CAD references once came to the folder ``incidents/CAD_X_1``, so the second incident's
signing found the first one's ``statement-v1.pdf`` there and failed with a 500 (or, had it
not, would have overwritten another incident's evidence).
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from pypdf import PdfReader

from appliance.config import Settings
from appliance.db import Database
from appliance.models import Role
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.calls.invites import Consent
from appliance.services.evidence import master_key
from appliance.services.record import statements
from appliance.services.record.statements import Witness
from tests.support.evidence import opened
from tests.support.signatures import signature_png
from tests.support.staff import add_incident, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="folder names are the file system's business; signing runs on both engines in "
    "tests/integration/test_statements.py"
)


def _sign_a_statement(
    db: Database, settings: Settings, officer_name: str, cad_reference: str, account: str
) -> str:
    """Create the incident, write, send and sign a statement on its call; the PDF's path."""
    with db.session() as session:
        officer = add_user(session, officer_name, Role.HANDLER)
        incident = add_incident(session, officer, cad_reference)
        _, call, _ = invites.create_invite(
            session, Actor("pc"), incident, officer, timedelta(hours=1)
        )
        invites.record_consent(session, call, Consent(True, True, False), "d" * 64, "t")
        statements.save(
            session,
            Actor("pc"),
            officer,
            incident,
            Witness.clean("Jane Marple", "", "Retired", account),
            settings.statement_declaration,
            call,
        )
        statement_id = statements.send(session, Actor("pc"), incident, call).id or 0
    with db.session() as session:
        keyring = master_key.open_keyring(settings, session)
        signed = statements.sign(
            session, settings, keyring, call, statement_id, "Jane Marple", signature_png(), "t"
        )
        return signed.pdf_path


def test_two_cad_references_with_the_same_folder_name_both_sign(
    db: Database, settings: Settings
) -> None:
    """``CAD/X/1`` and ``CAD_X_1`` each get a signed statement, in different folders named
    by their ids, and each PDF still opens to its own statement."""
    first = _sign_a_statement(db, settings, "pc1", "CAD/X/1", "I saw a grey van at the gate.")
    second = _sign_a_statement(
        db, settings, "pc2", "CAD_X_1", "I heard glass break at 21:40 hours."
    )
    assert first != second
    assert "CAD" not in first and "CAD" not in second
    assert "grey van" in _text(opened(settings, db, first))
    assert "glass break" in _text(opened(settings, db, second))


def _text(pdf: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
