"""Retention by kind and by case state: what the purge may never delete, what becomes
evidential by rule, what is minimised, and a deletion that a backup cannot undo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from appliance import migrate
from appliance.config import Settings, load_settings
from appliance.db import Database
from appliance.models import (
    Call,
    ChatMessage,
    EvidenceFile,
    FileKind,
    Incident,
    LocationFix,
    Role,
    SharedLocation,
    utcnow,
)
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.evidence import master_key, retention, sealing
from appliance.services.evidence.master_key import UnwrapError
from tests.support.staff import add_incident, add_user

NOW = datetime(2026, 12, 1, tzinfo=UTC)
OUTCOMES = [None, "advice_given", "crime_recorded", "no_further_action", "referred"]

incident_facts = st.fixed_dictionaries(
    {
        "closed": st.booleans(),
        "closed_days_ago": st.integers(0, 4000),
        "outcome": st.sampled_from(OUTCOMES),
    }
)
file_facts = st.fixed_dictionaries(
    {
        "incident": st.integers(0, 5),
        "kind": st.sampled_from([k.value for k in FileKind]),
        "age_days": st.integers(0, 4000),
        "evidential": st.booleans(),
        "legal_hold": st.booleans(),
        "review_days": st.none() | st.integers(-3000, 3000),
    }
)
rules = st.fixed_dictionaries(
    {
        "retention_days": st.integers(1, 100),
        "retention_by_kind": st.dictionaries(
            st.sampled_from(["recording", "snapshot", "upload"]), st.integers(1, 400)
        ),
        "retention_by_outcome": st.dictionaries(st.sampled_from(OUTCOMES[1:]), st.integers(1, 400)),
        "retention_by_category": st.dictionaries(st.just("Theft"), st.integers(1, 400)),
        "evidential_outcomes": st.lists(st.sampled_from(OUTCOMES[1:]), unique=True),
    }
)


@pytest.mark.sqlite_only(reason="plan() is a pure read; the property is about the rules")
def test_plan_never_deletes_open_statement_held_or_evidential(
    db: Database, settings: Settings
) -> None:
    """Any incidents, files, outcomes and rules: a file ``plan()`` deletes belongs to a
    closed incident, is not a signed statement, not on legal hold, not evidential, and
    its incident's outcome is not one that went to investigation. Each example runs in a
    transaction rolled back afterwards; the generated cases must include deletions (else
    the property would hold vacuously)."""
    deleted: list[int] = []

    @hypothesis_settings(max_examples=60, deadline=None, database=None)
    @given(
        incidents=st.lists(incident_facts, min_size=1, max_size=6),
        files=st.lists(file_facts, max_size=12),
        rule=rules,
    )
    def check(
        incidents: list[dict[str, Any]], files: list[dict[str, Any]], rule: dict[str, Any]
    ) -> None:
        chosen = settings.model_copy(update=rule)
        with Session(db.engine) as session:
            rows = []
            for n, facts in enumerate(incidents):
                closed = facts["closed"]
                incident = Incident(
                    cad_reference=f"CAD/P/{n}",
                    category="Theft",
                    caller_name="Jane Marple",
                    caller_phone="+447700900123",
                    status="closed" if closed else "open",
                    closed_at=NOW - timedelta(days=facts["closed_days_ago"]) if closed else None,
                    outcome_code=facts["outcome"],
                )
                session.add(incident)
                rows.append(incident)
            session.flush()
            for n, facts in enumerate(files):
                review = facts["review_days"]
                session.add(
                    EvidenceFile(
                        kind=facts["kind"],
                        incident_id=rows[facts["incident"] % len(rows)].id or 0,
                        path=f"f{n}",
                        wrapped_key="00",
                        master_key_id="k",
                        status="complete",
                        created_at=NOW - timedelta(days=facts["age_days"]),
                        evidential=facts["evidential"],
                        legal_hold=facts["legal_hold"],
                        review_at=None if review is None else NOW + timedelta(days=review),
                    )
                )
            session.flush()
            plan = retention.plan(session, chosen, NOW)
            for file in plan.delete:
                incident = session.get(Incident, file.incident_id)
                assert incident is not None and incident.status == "closed"
                assert file.kind != FileKind.STATEMENT.value
                assert not file.legal_hold and not file.evidential
                assert incident.outcome_code not in chosen.evidential_outcomes
            assert len(plan.decisions) == len(files), "every file has a decision"
            assert all(d.rule for d in plan.decisions)
            deleted.append(len(plan.delete))
            session.rollback()

    check()
    assert max(deleted) > 0, "no generated case deleted anything: the property is vacuous"


def _seal(
    session: Session,
    settings: Settings,
    keyring: Any,
    name: str,
    incident: Incident,
    kind: FileKind = FileKind.SNAPSHOT,
) -> EvidenceFile:
    return sealing.seal_bytes(
        session,
        keyring,
        settings.data_dir / f"{name}.jpg",
        name.encode() * 50,
        kind,
        incident.id or 0,
    )


def _age_and_close(session: Session, incident: Incident, outcome: str, days: int) -> None:
    incident.status, incident.outcome_code = "closed", outcome
    incident.closed_at = utcnow() - timedelta(days=days)
    session.add(incident)
    for file in session.exec(select(EvidenceFile).where(EvidenceFile.incident_id == incident.id)):
        file.created_at = utcnow() - timedelta(days=days)
        session.add(file)


def test_open_cases_statements_and_investigations_survive_the_purge(settings: Settings) -> None:
    """Four old incidents: one still open, one with a signed statement, one whose outcome
    went to investigation, one closed with advice. Only the last one's snapshot goes; the
    statement and the investigation's file become evidential by rule with a review date;
    the open one's file is kept, and the dry run names every rule."""
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    try:
        with db.session() as session:
            keyring = master_key.open_keyring(settings, session)
            user = add_user(session, "pc1", Role.HANDLER)
            open_, stated, crime, advice = (
                add_incident(session, user, f"CAD/RT/{n}") for n in range(4)
            )
            ids = {
                "open": _seal(session, settings, keyring, "open", open_).id,
                "statement": _seal(session, settings, keyring, "st", stated, FileKind.STATEMENT).id,
                "crime": _seal(session, settings, keyring, "crime", crime).id,
                "advice": _seal(session, settings, keyring, "advice", advice).id,
            }
            for file in session.exec(select(EvidenceFile)):
                file.created_at = utcnow() - timedelta(days=100)
            for incident, outcome in (
                (stated, "advice_given"),
                (crime, "crime_recorded"),
                (advice, "advice_given"),
            ):
                _age_and_close(session, incident, outcome, 100)
        with db.session() as session:
            dry = retention.plan(session, settings)
            rules = {d.file.id: (d.action.value, d.rule) for d in dry.decisions}
        assert rules[ids["open"]] == ("keep", "incident open: nothing of it is purged")
        assert rules[ids["statement"]][0] == "mark evidential"
        assert "crime_recorded" in rules[ids["crime"]][1]
        assert rules[ids["advice"]] == ("delete", "snapshot: 30 days (retention_days)")
        with db.session() as session:
            done = retention.purge(session, settings, keyring, Actor("test"), dry_run=False)
        assert [f.id for f in done.delete] == [ids["advice"]]
        with db.session() as session:
            kept = {f.id: f for f in session.exec(select(EvidenceFile))}
            assert kept[ids["statement"]].evidential and kept[ids["crime"]].evidential
            review = kept[ids["crime"]].review_at
            assert review is not None and review > utcnow() + timedelta(days=2000)
            assert kept[ids["advice"]].status == "deleted"
            assert kept[ids["open"]].status == "complete"
    finally:
        db.dispose()


def test_records_are_minimised_by_kind(settings: Settings) -> None:
    """Chat kept 10 days after close is minimised at 20 days, a location kept the default
    year is not; at 400 days the whole record goes, the RVR notes, chat and the caller's
    track with it."""
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    chosen = settings.model_copy(update={"retention_by_kind": {"chat": 10}})
    try:
        with db.session() as session:
            user = add_user(session, "pc1", Role.HANDLER)
            incident = add_incident(session, user, "CAD/MIN/1")
            invite, _, _ = invites.create_invite(
                session, Actor("pc1"), incident, user, timedelta(hours=1)
            )
            call_id = session.exec(select(Call)).one().id
            session.add(ChatMessage(call_id=call_id or 0, sender="caller", body="I live at 4 Elm"))
            session.add(
                SharedLocation(
                    incident_id=incident.id or 0,
                    invite_id=invite.id or 0,
                    latitude=50.7,
                    longitude=-2.4,
                    accuracy_m=5,
                )
            )
            session.add(
                LocationFix(
                    incident_id=incident.id or 0,
                    call_id=call_id or 0,
                    latitude=50.7,
                    longitude=-2.4,
                    accuracy_m=5,
                    easting=399000.0,
                    northing=80000.0,
                )
            )
            _age_and_close(session, incident, "advice_given", 20)
            incident_id = incident.id
        keyring = master_key.Keyring(b"k" * 32, settings.data_dir)
        with db.session() as session:
            retention.purge(session, chosen, keyring, Actor("test"), dry_run=False)
        with db.session() as session:
            assert [m.body for m in session.exec(select(ChatMessage))] == ["(minimised)"]
            assert session.exec(select(SharedLocation)).first() is not None
            assert session.exec(select(LocationFix)).first() is not None
            assert session.get(Incident, incident_id).caller_name == "Jane Marple"
            _age_and_close(session, session.get(Incident, incident_id), "advice_given", 400)
        with db.session() as session:
            retention.purge(session, chosen, keyring, Actor("test"), dry_run=False)
        with db.session() as session:
            assert session.exec(select(SharedLocation)).first() is None
            assert session.exec(select(LocationFix)).first() is None, "the call's track goes too"
            assert session.get(Incident, incident_id).caller_name == "(minimised)"
    finally:
        db.dispose()


@pytest.mark.sqlite_only(
    reason="the shred list is engine-independent; backup's own test covers PostgreSQL"
)
def test_a_purge_after_a_backup_stays_purged_on_restore(settings: Settings, tmp_path: Path) -> None:
    """Backup, purge one file, restore the backup into a fresh box with the current keys:
    the purged file's key is refused (shred list) and its row is a tombstone again; the
    other file still decrypts."""
    from appliance.services.evidence import backup

    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    with db.session() as session:
        keyring = master_key.open_keyring(settings, session)
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/BR/1")
        gone = _seal(session, settings, keyring, "gone", incident)
        kept = _seal(session, settings, keyring, "kept", incident)
        gone_id, kept_id, gone_key = gone.id, kept.id, gone.wrapped_key or ""
    backup.make(settings, db, tmp_path / "backup", keyring.key_id)
    with db.session() as session:
        retention.delete(
            session, keyring, Actor("test"), session.get(EvidenceFile, gone_id), "request"
        )
    db.dispose()

    fresh = load_settings(
        data_dir=tmp_path / "fresh-var",
        database_url=f"sqlite:///{tmp_path / 'fresh.db'}",
        master_key_file=settings.effective_master_key_file,
        public_url="https://evr.test",
    )
    (fresh.data_dir / "keys").mkdir(parents=True)
    master_key.shred_list_path(settings).replace(master_key.shred_list_path(fresh))
    info = backup.restore(fresh, tmp_path / "backup")
    assert info["reshredded"] == 1
    again = Database(fresh.effective_database_url)
    try:
        with again.session() as session:
            restored_keys = master_key.open_keyring(fresh, session)
            tombstone = session.get(EvidenceFile, gone_id)
            assert tombstone.wrapped_key is None and tombstone.status == "deleted"
            assert not (fresh.data_dir / tombstone.path).exists()
            with pytest.raises(UnwrapError):
                restored_keys.unwrap(gone_key)  # even a copy of the wrapped key is refused
            assert sealing.open_bytes(restored_keys, session.get(EvidenceFile, kept_id)) == (
                b"kept" * 50
            )
    finally:
        again.dispose()


def test_outcome_then_category_then_kind_decide_the_days() -> None:
    """One closed 40-day-old snapshot: kept under a 60-day category rule, deleted under
    the 30-day default, and the outcome's 20 days win over the category's."""
    base = load_settings(data_dir=Path("/nonexistent"), public_url="https://evr.test")
    incident = Incident(
        cad_reference="CAD/D/1",
        category="Harassment",
        caller_name="x",
        caller_phone="",
        status="closed",
        closed_at=NOW - timedelta(days=35),
        outcome_code="advice_given",
    )
    file = EvidenceFile(
        kind="snapshot",
        incident_id=1,
        path="p",
        master_key_id="k",
        status="complete",
        created_at=NOW - timedelta(days=40),
    )
    assert retention.decide(file, incident, base, NOW).action is retention.Action.DELETE
    by_category = base.model_copy(update={"retention_by_category": {"Harassment": 60}})
    kept = retention.decide(file, incident, by_category, NOW)
    assert (kept.action, kept.rule.split(",")[0]) == (
        retention.Action.KEEP,
        "category Harassment: 60 days (retention_by_category)",
    )
    both = by_category.model_copy(update={"retention_by_outcome": {"advice_given": 20}})
    assert retention.decide(file, incident, both, NOW).rule == (
        "outcome advice_given: 20 days (retention_by_outcome)"
    )
