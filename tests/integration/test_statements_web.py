"""The caller's side of the statement over HTTPS: after the call, only on their phone."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta

from sqlmodel import select

from appliance.models import Role, Statement
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.calls.invites import Consent
from appliance.services.record import statements
from appliance.services.record.statements import Witness
from appliance.web import keys
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.signatures import signature_png
from tests.support.staff import add_incident, add_user

DEVICE = "the-callers-phone-device-token"


def _ended_call_with_a_statement_sent(server: LiveServer, rejoined: bool = False) -> str:
    """A call on which the officer sent the statement, then ended it. ``rejoined``: the
    caller ended it first by mistake and came back on the same link (a second call),
    and the officer ended that one."""
    with server.db.session() as session:
        officer = add_user(session, "pc3", Role.HANDLER)
        incident = add_incident(session, officer, "CAD/SW/1")
        _, call, token = invites.create_invite(
            session, Actor("pc3"), incident, officer, timedelta(hours=1)
        )
        device_hash = hashlib.sha256(DEVICE.encode()).hexdigest()
        invites.record_consent(session, call, Consent(True, False, False), device_hash, "t")
        states.caller_waiting(session, call, "t")
        life.admit(session, server.settings, call, officer, "t")
        statements.save(
            session,
            Actor("pc3"),
            officer,
            incident,
            Witness.clean("Jane Marple", "", "", "I saw the van at 10."),
            server.settings.statement_declaration,
            call,
        )
        statements.send(session, Actor("pc3"), incident, call)
        if rejoined:
            life.end(session, server.settings, call, Actor("caller", "t"), life.CALLER_ENDED)
            again = life.rejoin(session, server.settings, call, device_hash, "t")
            assert again is not None
            invites.record_consent(session, again, Consent(True, False, False), device_hash, "t")
            states.caller_waiting(session, again, "t")
            life.admit(session, server.settings, again, officer, "t")
            call = again
        life.end(session, server.settings, call, Actor("pc3"), "handler_ended")
    return token


async def test_after_the_call_the_link_leads_the_caller_to_sign(
    live_server: LiveServer, caller: FormClient
) -> None:
    token = _ended_call_with_a_statement_sent(live_server)
    caller.set_cookie(keys.CALLER_DEVICE_COOKIE, DEVICE)
    response, _ = await caller.get(f"/v/{token}", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].endswith("/statement/sign")
    response, page = await caller.get(f"/v/{token}/statement/sign")
    assert response.status == 200 and 'id="statement-panel"' in page
    csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    response, body = await caller.get(f"/v/{token}/statement")
    assert response.headers["Cache-Control"] == "no-store"
    assert '"account": "I saw the van at 10."' in body.replace('":"', '": "')

    with live_server.db.session() as session:
        statement_id = session.exec(select(Statement.id)).one()
    url = f"{live_server.base_url}/v/{token}/statement/{statement_id}/sign"
    data_url = "data:image/png;base64," + base64.b64encode(signature_png()).decode()
    async with caller.session.post(
        url, json={"name": "Jane Marple", "signature": data_url}, headers={"X-CSRF-Token": csrf}
    ) as signed:
        assert signed.status == 200
        assert (await signed.json())["statement"]["state"] == "signed"

    # Now nothing waits: the link says the call has finished.
    response, page = await caller.get(f"/v/{token}", allow_redirects=False)
    assert response.status == 410 and "This video call has finished" in page


async def test_the_caller_can_sign_by_the_typed_name_without_drawing(
    live_server: LiveServer, caller: FormClient
) -> None:
    """WCAG 2.5.7. Tried: the page offers the typed way and names the canvas; a typed
    signing without the confirmation is refused (400), with it the statement is signed
    and the caller's view says it was typed."""
    token = _ended_call_with_a_statement_sent(live_server)
    caller.set_cookie(keys.CALLER_DEVICE_COOKIE, DEVICE)
    response, page = await caller.get(f"/v/{token}/statement/sign")
    assert response.status == 200
    assert 'id="sign-typed"' in page and 'id="typed-confirmed"' in page
    assert statements.TYPED_CONFIRMATION in page
    canvas = re.search(r"<canvas [^>]*>", page).group(0)  # type: ignore[union-attr]
    assert 'aria-labelledby="signature-pad-label"' in canvas
    assert 'aria-describedby="signature-pad-hint"' in canvas
    csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    with live_server.db.session() as session:
        statement_id = session.exec(select(Statement.id)).one()
    url = f"{live_server.base_url}/v/{token}/statement/{statement_id}/sign"
    headers = {"X-CSRF-Token": csrf}
    typed = {"name": "Jane Marple", "typed": True}
    async with caller.session.post(url, json=typed, headers=headers) as refused:
        assert refused.status == 400
        assert "confirm" in (await refused.json())["error"]
    async with caller.session.post(
        url, json={**typed, "confirmed": True}, headers=headers
    ) as signed:
        assert signed.status == 200
        view = (await signed.json())["statement"]
    assert view["state"] == "signed" and view["signedBy"] == "typed"
    with live_server.db.session() as session:
        row = session.get(Statement, statement_id)
        assert row is not None and row.signed_by == "typed" and row.pdf_path


async def test_another_phone_or_no_token_cannot_read_or_sign(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Tried: the link on a phone without the device cookie; the sign call without CSRF."""
    token = _ended_call_with_a_statement_sent(live_server)
    response, _ = await caller.get(f"/v/{token}/statement")
    assert response.status == 403
    response, _ = await caller.get(f"/v/{token}", allow_redirects=False)
    assert response.status == 410  # no statement is offered to a phone that is not theirs

    caller.set_cookie(keys.CALLER_DEVICE_COOKIE, DEVICE)
    with live_server.db.session() as session:
        statement_id = session.exec(select(Statement.id)).one()
    url = f"{live_server.base_url}/v/{token}/statement/{statement_id}/sign"
    data_url = "data:image/png;base64," + base64.b64encode(signature_png()).decode()
    async with caller.session.post(url, json={"name": "X", "signature": data_url}) as refused:
        assert refused.status == 403
    with live_server.db.session() as session:
        assert session.get(Statement, statement_id).state == "sent"  # type: ignore[union-attr]


async def test_a_statement_sent_before_the_caller_rejoined_is_still_theirs_to_sign(
    live_server: LiveServer, caller: FormClient
) -> None:
    """The officer sent the statement; the caller ended the call by mistake, rejoined (a
    new call on the same link), and the officer ended that one. The link still shows the
    statement sent during the first call, and the caller signs it from the rejoined one."""
    token = _ended_call_with_a_statement_sent(live_server, rejoined=True)
    caller.set_cookie(keys.CALLER_DEVICE_COOKIE, DEVICE)
    response, page = await caller.get(f"/v/{token}/statement/sign")
    assert response.status == 200
    csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    response, body = await caller.get(f"/v/{token}/statement")
    assert '"account": "I saw the van at 10."' in body.replace('":"', '": "')
    with live_server.db.session() as session:
        statement_id = session.exec(select(Statement.id)).one()
    url = f"{live_server.base_url}/v/{token}/statement/{statement_id}/sign"
    data_url = "data:image/png;base64," + base64.b64encode(signature_png()).decode()
    async with caller.session.post(
        url, json={"name": "Jane Marple", "signature": data_url}, headers={"X-CSRF-Token": csrf}
    ) as signed:
        assert signed.status == 200
        assert (await signed.json())["statement"]["state"] == "signed"
