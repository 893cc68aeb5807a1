"""The randomised trial over a real database: concealment, fixed arms, balance, reproduction."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlmodel import select

from appliance.config import Settings
from appliance.db import Database
from appliance.models import (
    ArmAlreadyRevealed,
    AuditEvent,
    Incident,
    Role,
    TrialAllocation,
    TrialBlock,
    User,
    utcnow,
)
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.calls.states import CallError
from appliance.services.evaluation import trial
from appliance.services.evaluation.trial import TrialError
from appliance.services.intake import incidents
from tests.support.staff import add_incident, add_user

ACTOR = Actor("sup1")
QUESTIONS = ["Caller is 18 or over"]


def _eligible(session, user: User, ref: str, category: str = "Theft") -> Incident:
    incident = add_incident(session, user, ref, category=category)
    incidents.set_eligibility(session, ACTOR, user, incident, QUESTIONS, [True])
    return incident


@pytest.fixture
def people(db: Database) -> tuple[int, int]:
    with db.session() as session:
        supervisor = add_user(session, "sup1", Role.SUPERVISOR, Role.HANDLER)
        session.flush()
        return supervisor.id, 0


def _user(session) -> User:
    return session.exec(select(User).where(User.username == "sup1")).one()


def test_nothing_is_revealed_before_eligibility_and_consent(
    db: Database, settings: Settings, people: tuple[int, int]
) -> None:
    with db.session() as session:
        user = _user(session)
        trial.start(session, ACTOR, user, settings, seed=42)
        incident = add_incident(session, user, "CAD/T/1")
        with pytest.raises(TrialError, match="eligibility check"):
            trial.reveal(session, ACTOR, user, incident)
        with pytest.raises(TrialError, match="eligibility check first"):
            trial.record_consent(session, ACTOR, user, incident, True)
        incidents.set_eligibility(session, ACTOR, user, incident, QUESTIONS, [True])
        with pytest.raises(TrialError, match="consent is recorded"):
            trial.reveal(session, ACTOR, user, incident)
        assert session.exec(select(TrialBlock)).all() == []
        ineligible = add_incident(session, user, "CAD/T/2")
        incidents.set_eligibility(session, ACTOR, user, ineligible, QUESTIONS, [False])
        with pytest.raises(TrialError, match="only eligible incidents"):
            trial.record_consent(session, ACTOR, user, ineligible, True)


def test_a_caller_who_declines_is_counted_and_never_randomised(
    db: Database, settings: Settings, people: tuple[int, int]
) -> None:
    with db.session() as session:
        user = _user(session)
        trial.start(session, ACTOR, user, settings, seed=42)
        incident = _eligible(session, user, "CAD/T/3")
        trial.record_consent(session, ACTOR, user, incident, False)
        with pytest.raises(TrialError, match="declined"):
            trial.reveal(session, ACTOR, user, incident)
        assert trial.video_refusal(session, incident) is None  # video stays theirs to choose
        assert session.exec(select(TrialBlock)).all() == []


def test_a_revealed_arm_is_fixed(db: Database, settings: Settings, people: tuple[int, int]) -> None:
    with db.session() as session:
        user = _user(session)
        trial.start(session, ACTOR, user, settings, seed=7)
        incident = _eligible(session, user, "CAD/T/4")
        trial.record_consent(session, ACTOR, user, incident, True)
        arm = trial.reveal(session, ACTOR, user, incident)
        assert trial.reveal(session, ACTOR, user, incident) == arm
        with pytest.raises(TrialError, match="already revealed"):
            trial.record_consent(session, ACTOR, user, incident, False)
        # Recording eligibility again (now no) does not move the allocation either.
        incidents.set_eligibility(session, ACTOR, user, incident, QUESTIONS, [False])
        assert trial.allocation_of(session, incident).arm == arm
        reveals = session.exec(select(AuditEvent).where(AuditEvent.action == "trial.revealed"))
        assert len(reveals.all()) == 1
    with pytest.raises(ArmAlreadyRevealed), db.session() as session:
        allocation = session.exec(select(TrialAllocation)).one()
        allocation.arm = "usual" if allocation.arm == "video" else "video"
        session.add(allocation)
        session.flush()
    with db.session() as session:
        assert session.exec(select(TrialAllocation)).one().arm == arm


def _run_trial(
    db: Database, settings: Settings, seed: int, per_stratum: int, run: str = "a"
) -> dict[str, list]:
    """Allocate ``per_stratum`` incidents in each of two categories, interleaved."""
    with db.session() as session:
        user = _user(session)
        started = trial.start(session, ACTOR, user, settings, seed=seed)
        for i in range(per_stratum):
            for category in ("Theft", "Burglary"):
                ref = f"CAD/{run}/{category[:2]}/{seed}/{i}"
                incident = _eligible(session, user, ref, category)
                trial.record_consent(session, ACTOR, user, incident, True)
                trial.reveal(session, ACTOR, user, incident)
        allocations = session.exec(
            select(TrialAllocation)
            .where(TrialAllocation.trial_id == started.id)
            .order_by(TrialAllocation.id)  # type: ignore[arg-type]
        ).all()
        by_stratum: dict[str, list] = {"Theft": [], "Burglary": []}
        for a in allocations:
            by_stratum[a.stratum].append(a.arm)
        trial.stop(session, ACTOR, user)
        return by_stratum


def test_blocks_are_balanced_and_the_seed_reproduces_them(
    db: Database, settings: Settings, people: tuple[int, int]
) -> None:
    arms = _run_trial(db, settings, seed=20261126, per_stratum=30)
    with db.session() as session:
        running = trial.trials(session)[0]
        blocks = session.exec(select(TrialBlock)).all()
        for block in blocks:
            assert Counter(block.arms)["video"] == Counter(block.arms)["usual"]
            used = session.exec(
                select(TrialAllocation).where(TrialAllocation.block_id == block.id)
            ).all()
            if len(used) == len(block.arms):
                assert Counter(a.arm for a in used) == Counter(block.arms)
        audit = trial.audit_blocks(session, running)
        assert audit and all(b.reproduced for b in audit)
        seed, sizes = running.seed, running.block_sizes
    for stratum, allocated in arms.items():
        # The whole allocation comes back from the seed alone.
        assert allocated == trial.sequence(seed, stratum, len(allocated), sizes)
        counts = Counter(allocated)
        assert abs(counts["video"] - counts["usual"]) <= max(sizes) // 2


def test_the_same_seed_gives_the_same_allocation_again(
    db: Database, settings: Settings, people: tuple[int, int]
) -> None:
    first = _run_trial(db, settings, seed=99, per_stratum=12)
    second = _run_trial(db, settings, seed=99, per_stratum=12, run="b")
    third = _run_trial(db, settings, seed=100, per_stratum=12, run="c")
    assert first == second
    assert first != third


def test_only_one_trial_runs_and_a_stopped_one_allocates_nothing_new(
    db: Database, settings: Settings, people: tuple[int, int]
) -> None:
    with db.session() as session:
        user = _user(session)
        trial.start(session, ACTOR, user, settings)
        with pytest.raises(TrialError, match="already running"):
            trial.start(session, ACTOR, user, settings)
        incident = _eligible(session, user, "CAD/T/5")
        trial.record_consent(session, ACTOR, user, incident, True)
        trial.stop(session, ACTOR, user)
        with pytest.raises(TrialError, match="has stopped"):
            trial.reveal(session, ACTOR, user, incident)
        with pytest.raises(TrialError, match="no trial is running"):
            trial.stop(session, ACTOR, user)
        with pytest.raises(TrialError, match="seed"):
            trial.start(session, ACTOR, user, settings, seed=-1)


def test_the_usual_arm_gets_no_video_invite_and_records_the_visit(
    db: Database, settings: Settings, people: tuple[int, int]
) -> None:
    with db.session() as session:
        user = _user(session)
        trial.start(session, ACTOR, user, settings, seed=5)
        by_arm: dict[str, Incident] = {}
        pending = _eligible(session, user, "CAD/T/P")
        trial.record_consent(session, ACTOR, user, pending, True)
        with pytest.raises(CallError, match="reveal the trial allocation"):
            invites.create_invite(session, ACTOR, pending, user, timedelta(hours=1))
        i = 0
        while len(by_arm) < 2:
            incident = _eligible(session, user, f"CAD/T/A{i}")
            trial.record_consent(session, ACTOR, user, incident, True)
            by_arm.setdefault(trial.reveal(session, ACTOR, user, incident), incident)
            i += 1
        usual, video = by_arm["usual"], by_arm["video"]
        invites.create_invite(session, ACTOR, video, user, timedelta(hours=1))
        with pytest.raises(CallError, match="usual-response arm"):
            invites.create_invite(session, ACTOR, usual, user, timedelta(hours=1))
        with pytest.raises(TrialError, match="only an incident allocated to the usual"):
            trial.record_in_person(session, ACTOR, user, video, settings, "advice_given")
        with pytest.raises(TrialError, match="from the list"):
            trial.record_in_person(session, ACTOR, user, usual, settings, "made_up")
        with pytest.raises(TrialError, match="future"):
            trial.record_in_person(
                session, ACTOR, user, usual, settings, "advice_given", utcnow() + timedelta(hours=1)
            )
        with pytest.raises(TrialError, match="before the incident"):
            trial.record_in_person(
                session,
                ACTOR,
                user,
                usual,
                settings,
                "advice_given",
                usual.received_at - timedelta(hours=1),
            )
        done = trial.record_in_person(session, ACTOR, user, usual, settings, "crime_recorded")
        assert done.in_person_outcome == "crime_recorded" and done.in_person_at is not None
        with pytest.raises(TrialError, match="already recorded"):
            trial.record_in_person(session, ACTOR, user, usual, settings, "crime_recorded")
