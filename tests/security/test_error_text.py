"""Item 21: the evidence page's ``?error=`` is a code with a fixed message, never text.

The attack: a link to the trusted evidence page whose ``?error=`` carries a phishing
message ("your session expired, sign in at ..."), sent to an evidence officer. The page
showed it verbatim (escaped, but words on a trusted page all the same).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from appliance.models import FileKind, Role
from appliance.services.evidence import master_key, sealing
from appliance.services.evidence.custody import REFUSALS
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="what the page prints is not the database's business; evidence marking runs "
    "on both engines in tests/integration/test_evidence.py"
)

PHISH = "Your session expired: sign in again at https://evil.example/evr"


@pytest.fixture
async def officer(live_server: LiveServer) -> AsyncIterator[tuple[FormClient, int, int]]:
    """A signed-in evidence officer, and an incident with one sealed snapshot."""
    settings = live_server.settings
    with live_server.db.session() as session:
        keyring = master_key.open_keyring(settings, session)
        user = add_user(session, "eo1", Role.EVIDENCE_OFFICER)
        incident = add_incident(session, user, "CAD/SEC/21")
        file = sealing.seal_bytes(
            session,
            keyring,
            settings.data_dir / "s.jpg",
            b"j" * 32,
            FileKind.SNAPSHOT,
            incident.id,
        )
        ids = (incident.id or 0, file.id or 0)
    client = FormClient(live_server.base_url)
    await client.sign_in("eo1", PASSWORD)
    try:
        yield client, *ids
    finally:
        await client.close()


async def test_error_text_from_the_url_is_never_shown(
    officer: tuple[FormClient, int, int],
) -> None:
    """The phishing text in ``?error=`` does not appear on the page, nor does any alert;
    a known code shows its own fixed message."""
    client, incident_id, _ = officer
    response, page = await client.get(f"/incidents/{incident_id}/evidence?error={quote(PHISH)}")
    assert response.status == 200
    assert "evil.example" not in page and 'role="alert"' not in page
    response, page = await client.get(f"/incidents/{incident_id}/evidence?error=review_past")
    assert response.status == 200 and REFUSALS["review_past"] in page


async def test_a_refused_mark_redirects_with_a_code_and_a_good_mark_still_lands(
    officer: tuple[FormClient, int, int],
) -> None:
    """A review date in year 9999 is refused: the redirect carries the code, the page the
    fixed sentence. A proper mark (exhibit and review date next year) is saved."""
    client, incident_id, file_id = officer
    await client.get(f"/incidents/{incident_id}/evidence")
    mark = {"evidential": "yes", "exhibit_ref": "JS/1", "review_at": "9999-12-31"}
    response, _ = await client.post(f"/evidence/{file_id}/mark", mark)
    assert response.status == 303
    location = response.headers["Location"]
    assert location.endswith("?error=review_out_of_range"), location
    _, page = await client.get(location)
    assert "The review date must lie between 2000-01-01 and 2099-12-31." in page

    response, _ = await client.post(
        f"/evidence/{file_id}/mark", {**mark, "review_at": "2099-01-01"}
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/incidents/{incident_id}/evidence#file-{file_id}"
    _, page = await client.get(f"/incidents/{incident_id}/evidence")
    assert "exhibit JS/1" in page and "2099-01-01" in page
