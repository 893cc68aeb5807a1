"""The randomised trial: video response against the usual (in-person) response.

A supervisor switches a trial on with a seed (drawn at random unless given) and
block sizes. Eligible incidents whose callers agree to take part are allocated in
blocks within strata (the incident's category, as Kent did): each block holds as
many video as usual-response places, shuffled. Block ``n`` of stratum ``s`` is a pure
function of ``(seed, s, n, block sizes)`` (``draw_block``), so anyone holding the seed
can reproduce the whole sequence; each block is also stored when first used.

Concealment: the next place in a stratum is taken only at the moment of revealing,
and revealing needs the eligibility check and the caller's consent recorded first.
While the trial runs nobody is shown the seed (whoever knows it could work out the
next place): the audit trail holds its SHA-256 from the start and the seed itself
from the stop, so an auditor can check it was not changed in between.
Once revealed the arm is fixed: revealing again returns it, and the allocation row
refuses any change (see ``models.evaluation``).
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from appliance.config import Settings
from appliance.models import (
    USUAL_ARM,
    VIDEO_ARM,
    Incident,
    Trial,
    TrialAllocation,
    TrialBlock,
    User,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor

MAX_SEED = 2**62


class TrialError(ValueError):
    """The message is for the person who asked."""


def draw_block(seed: int, stratum: str, number: int, sizes: Sequence[int]) -> list[str]:
    """Block ``number`` (from 1) of ``stratum``: half video, half usual, in random order.

    ``random.Random`` seeded with a string hashes it with SHA-512 (seed version 2), so
    the draw is the same in every process and Python version that keeps that rule.
    """
    rng = random.Random(f"evr-trial:{seed}:{stratum}:{number}")
    size = rng.choice(list(sizes))
    arms = [VIDEO_ARM] * (size // 2) + [USUAL_ARM] * (size // 2)
    rng.shuffle(arms)
    return arms


def sequence(seed: int, stratum: str, places: int, sizes: Sequence[int]) -> list[str]:
    """The first ``places`` arms of a stratum's sequence, from the seed alone (for audit)."""
    arms: list[str] = []
    number = 1
    while len(arms) < places:
        arms.extend(draw_block(seed, stratum, number, sizes))
        number += 1
    return arms[:places]


def seed_digest(seed: int) -> str:
    """What the audit trail shows of a running trial's seed: it commits to the seed
    without telling it (the seed itself is recorded when the trial stops)."""
    return hashlib.sha256(f"evr-trial-seed:{seed}".encode()).hexdigest()


def active(session: Session) -> Trial | None:
    return session.exec(
        select(Trial).where(col(Trial.stopped_at).is_(None)).order_by(col(Trial.id).desc())
    ).first()


def start(
    session: Session,
    actor: Actor,
    user: User,
    settings: Settings,
    seed: int | None = None,
) -> Trial:
    """Switch a trial on. Refused while one runs."""
    if active(session) is not None:
        raise TrialError("a trial is already running: stop it first")
    if seed is not None and not 0 <= seed < MAX_SEED:
        raise TrialError(f"the seed is a whole number from 0 to {MAX_SEED - 1}")
    trial = Trial(
        seed=secrets.randbelow(MAX_SEED) if seed is None else seed,
        block_sizes=list(settings.trial_block_sizes),
        stratify_by="category",
        started_by_id=user.id or 0,
    )
    session.add(trial)
    session.flush()
    audit.record(
        session,
        actor,
        "trial.started",
        object_type="trial",
        object_id=trial.id or "",
        detail={
            "seed_sha256": seed_digest(trial.seed),
            "block_sizes": trial.block_sizes,
            "strata": "category",
        },
    )
    return trial


def stop(session: Session, actor: Actor, user: User) -> Trial:
    """Switch the running trial off; its allocations stay as they are."""
    trial = active(session)
    if trial is None:
        raise TrialError("no trial is running")
    trial.stopped_at = utcnow()
    trial.stopped_by_id = user.id
    session.add(trial)
    audit.record(
        session,
        actor,
        "trial.stopped",
        object_type="trial",
        object_id=trial.id or "",
        detail={"seed": trial.seed},
    )
    return trial


def allocation_of(session: Session, incident: Incident) -> TrialAllocation | None:
    return session.exec(
        select(TrialAllocation).where(TrialAllocation.incident_id == incident.id)
    ).first()


def record_consent(
    session: Session, actor: Actor, user: User, incident: Incident, consented: bool
) -> TrialAllocation:
    """The caller's answer to taking part. Needs a running trial and an eligible incident.

    A caller who declines is recorded (the consent rate is a measure) and is not
    randomised: the video response or a visit stays theirs to choose.
    """
    trial = active(session)
    if trial is None:
        raise TrialError("no trial is running")
    if incident.eligibility != "eligible" or incident.eligibility_at is None:
        raise TrialError("record the eligibility check first: only eligible incidents take part")
    existing = allocation_of(session, incident)
    if existing is not None:
        if existing.arm is not None:
            raise TrialError("the allocation is already revealed and cannot change")
        raise TrialError("the caller's answer about the trial is already recorded")
    allocation = TrialAllocation(
        trial_id=trial.id or 0,
        incident_id=incident.id or 0,
        stratum=incident.category,
        consented=consented,
        consent_by_id=user.id or 0,
    )
    session.add(allocation)
    session.flush()
    audit.record(
        session,
        actor,
        "trial.consent",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"trial": trial.id, "consented": consented},
    )
    return allocation


def reveal(session: Session, actor: Actor, user: User, incident: Incident) -> str:
    """The incident's arm: the next place in its stratum's sequence, fixed from now on."""
    allocation = allocation_of(session, incident)
    if incident.eligibility != "eligible" or incident.eligibility_at is None:
        raise TrialError("the allocation stays hidden until the eligibility check is recorded")
    if allocation is None:
        raise TrialError("the allocation stays hidden until the caller's consent is recorded")
    if allocation.arm is not None:
        return allocation.arm
    if not allocation.consented:
        raise TrialError("the caller declined the trial: there is no allocation to reveal")
    trial = session.get(Trial, allocation.trial_id)
    if trial is None or trial.stopped_at is not None:
        raise TrialError("the trial has stopped: no new allocations")
    block, position = _next_place(session, trial, allocation.stratum)
    allocation.block_id = block.id
    allocation.position = position
    allocation.arm = block.arms[position]
    allocation.revealed_at = utcnow()
    allocation.revealed_by_id = user.id
    session.add(allocation)
    session.flush()
    audit.record(
        session,
        actor,
        "trial.revealed",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"trial": trial.id, "block": block.number, "position": position},
    )
    return allocation.arm


def _next_place(session: Session, trial: Trial, stratum: str) -> tuple[TrialBlock, int]:
    block = session.exec(
        select(TrialBlock)
        .where(TrialBlock.trial_id == trial.id, TrialBlock.stratum == stratum)
        .order_by(col(TrialBlock.number).desc())
    ).first()
    if block is not None:
        used = session.exec(select(func.count()).where(TrialAllocation.block_id == block.id)).one()
        if used < len(block.arms):
            return block, used
    number = (block.number if block else 0) + 1
    block = TrialBlock(
        trial_id=trial.id or 0,
        stratum=stratum,
        number=number,
        arms=draw_block(trial.seed, stratum, number, trial.block_sizes),
    )
    session.add(block)
    session.flush()
    return block, 0


def record_in_person(
    session: Session,
    actor: Actor,
    user: User,
    incident: Incident,
    settings: Settings,
    outcome_code: str,
    at: datetime | None = None,
) -> TrialAllocation:
    """A usual-response incident's in-person attendance: when, and what came of it."""
    allocation = allocation_of(session, incident)
    if allocation is None or allocation.arm != USUAL_ARM:
        raise TrialError("only an incident allocated to the usual response records a visit")
    if allocation.in_person_at is not None:
        raise TrialError("the in-person response is already recorded")
    if outcome_code not in settings.outcome_codes:
        raise TrialError("choose the visit's outcome from the list")
    when = at or utcnow()
    if when.tzinfo is None:
        raise TrialError("the time of the visit needs a time zone")
    if when < incident.received_at:
        raise TrialError("the visit cannot be before the incident was received")
    if when > utcnow():
        raise TrialError("the visit cannot be in the future")
    allocation.in_person_at = when
    allocation.in_person_outcome = outcome_code
    allocation.in_person_by_id = user.id
    session.add(allocation)
    session.flush()
    audit.record(
        session,
        actor,
        "trial.in_person",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"outcome": outcome_code},
    )
    return allocation


def video_refusal(session: Session, incident: Incident) -> str | None:
    """Why a video invite must wait or cannot go (the trial decides), else None."""
    allocation = allocation_of(session, incident)
    if allocation is not None and allocation.arm == USUAL_ARM:
        return "this incident is in the trial's usual-response arm: an officer attends in person"
    if (
        allocation is not None
        and allocation.consented
        and allocation.arm is None
        and active(session) is not None
    ):
        return "reveal the trial allocation before sending a video invite"
    return None


@dataclass(frozen=True)
class BlockAudit:
    stratum: str
    number: int
    arms: list[str]
    reproduced: bool
    used: int


def audit_blocks(session: Session, trial: Trial) -> list[BlockAudit]:
    """Every stored block beside the same block drawn again from the seed."""
    blocks = session.exec(
        select(TrialBlock)
        .where(TrialBlock.trial_id == trial.id)
        .order_by(col(TrialBlock.stratum), col(TrialBlock.number))
    ).all()
    used = dict(
        session.exec(
            select(TrialAllocation.block_id, func.count())
            .where(TrialAllocation.trial_id == trial.id, col(TrialAllocation.block_id).is_not(None))
            .group_by(col(TrialAllocation.block_id))
        ).all()
    )
    return [
        BlockAudit(
            b.stratum,
            b.number,
            list(b.arms),
            list(b.arms) == draw_block(trial.seed, b.stratum, b.number, trial.block_sizes),
            int(used.get(b.id, 0)),
        )
        for b in blocks
    ]


def trials(session: Session) -> list[Trial]:
    return list(session.exec(select(Trial).order_by(col(Trial.id).desc())).all())
