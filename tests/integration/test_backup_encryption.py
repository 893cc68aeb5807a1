"""A backup encrypted to the force's age public key: no clear database in it, and a
restore needs the matching secret key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyrage import x25519
from sqlmodel import select

from appliance import migrate
from appliance.config import Settings, load_settings
from appliance.db import Database
from appliance.models import Incident, Role
from appliance.services.evidence import backup, master_key
from tests.support.staff import add_incident, add_user


def test_an_encrypted_backup_restores_only_with_the_identity(
    settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The backup holds db.*.age and no clear dump (the caller's name is not in any of
    its files); a restore without --identity, or with another key, restores nothing;
    with the force's key the incident comes back."""
    identity = x25519.Identity.generate()
    chosen = settings.model_copy(update={"backup_recipient": str(identity.to_public())})
    db = Database(chosen.effective_database_url)
    migrate.upgrade(db.engine)
    with db.session() as session:
        keyring = master_key.open_keyring(chosen, session)
        add_incident(session, add_user(session, "pc1", Role.HANDLER), "CAD/AGE/1")
    backup.make(chosen, db, tmp_path / "b", keyring.key_id)
    db.dispose()
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert any(n.endswith(".age") for n in names)
    assert "db.sqlite" not in names and "db.pgdump" not in names
    for path in (tmp_path / "b").rglob("*"):
        assert not path.is_file() or b"Marple" not in path.read_bytes(), path

    if chosen.effective_database_url.startswith("sqlite"):
        fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        fresh_url = request.getfixturevalue("postgres_databases").create()
    fresh = load_settings(
        data_dir=tmp_path / "fresh-var",
        database_url=fresh_url,
        master_key_file=chosen.effective_master_key_file,
        public_url="https://evr.test",
    )
    with pytest.raises(backup.BackupError, match="give --identity"):
        backup.restore(fresh, tmp_path / "b")
    wrong = tmp_path / "wrong.key"
    wrong.write_text(f"# another force\n{x25519.Identity.generate()}\n")
    with pytest.raises(backup.BackupError, match="does not decrypt"):
        backup.restore(fresh, tmp_path / "b", wrong)
    right = tmp_path / "force.key"
    right.write_text(f"# created: today\n# public key: {identity.to_public()}\n{identity}\n")
    backup.restore(fresh, tmp_path / "b", right)
    again = Database(fresh_url)
    try:
        with again.session() as session:
            assert [i.cad_reference for i in session.exec(select(Incident))] == ["CAD/AGE/1"]
    finally:
        again.dispose()
