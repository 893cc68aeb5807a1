"""The caller survey: four questions, optional, one answer per incident.

A caller reaches it two ways. On the call page, once the video call has ended, the
page offers it under the same personal link (``/v/{token}/survey``): only the phone
the call was on, only after a call that connected. Later, by SMS: when a video call
ends, or when a usual-response (control arm) incident's visit is recorded, a survey
link is queued to send after ``survey_sms_delay_minutes``; an answer on the page
first withdraws it. The SMS link is one-use, expires, and only the SHA-256 of its
token is kept, like an invite's.

The answer is kept with its cohort (video arm, usual arm, or video outside the
trial) and never shown on the incident: the audit event names the response, not the
incident, so the handler's timeline does not show it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlmodel import Session, col, select

from appliance import i18n
from appliance.config import Settings
from appliance.i18n import N_
from appliance.models import (
    FINAL_STATES,
    Call,
    CallState,
    Incident,
    Invite,
    OutboundMessage,
    SurveyLink,
    SurveyResponse,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.evaluation.trial import allocation_of
from appliance.services.outbox import messages

PAGE, SMS = "page", "sms"
# Cohorts: the trial's two arms, and video responses outside any trial.
VIDEO_ARM, USUAL_ARM, SERVICE = "video", "usual", "service"
COMMENT_MAX = 1000


class SurveyError(ValueError):
    """The message is for the caller (in English: the page translates it)."""


class SurveyProblem(StrEnum):
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    ANSWERED = "answered"
    NOT_YET = "not_yet"  # the call has not ended (or never connected)


@dataclass(frozen=True)
class Answers:
    handling: int
    outcome: int
    use_again: bool | None
    comment: str


def parse(form: Mapping[str, str]) -> Answers:
    """The form's answers; a clear error names the first question left out or wrong."""

    def rating(name: str, refusal: str) -> int:
        raw = str(form.get(name, "")).strip()
        if raw not in {"1", "2", "3", "4", "5"}:
            raise SurveyError(refusal)
        return int(raw)

    handling = rating(
        "handling",
        N_(
            "Not sent: choose an answer from 1 to 5 for: how positive you feel about the "
            "way we handled the call."
        ),
    )
    outcome = rating(
        "outcome",
        N_("Not sent: choose an answer from 1 to 5 for: how satisfied you are with the outcome."),
    )
    again = str(form.get("use_again", "")).strip()
    if again not in {"yes", "no", ""}:
        raise SurveyError(N_("Not sent: answer yes or no to using video again, or leave it out."))
    comment = str(form.get("comment", "")).strip()
    if len(comment) > COMMENT_MAX:
        # COMMENT_MAX is the form's maxlength too: only a hand-made request gets here.
        raise SurveyError(N_("Not sent: keep your comments to 1000 characters."))
    return Answers(handling, outcome, {"yes": True, "no": False}.get(again), comment)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cohort_of(session: Session, incident: Incident) -> str | None:
    """The trial arm once revealed; else video outside the trial if a call connected."""
    allocation = allocation_of(session, incident)
    if allocation is not None and allocation.arm is not None:
        return allocation.arm
    connected = session.exec(
        select(Call.id).where(Call.incident_id == incident.id, col(Call.connected_at).is_not(None))
    ).first()
    return SERVICE if connected is not None else None


def response_for(session: Session, incident_id: int) -> SurveyResponse | None:
    return session.exec(
        select(SurveyResponse).where(SurveyResponse.incident_id == incident_id)
    ).first()


def offer_by_sms(
    session: Session, settings: Settings, incident: Incident, call: Call | None = None
) -> SurveyLink | None:
    """Queue the survey SMS for later (once per incident); None when it is not sent.

    Not sent: already answered or already offered, a category kept off SMS for the
    caller's safety, or (for a call) a call that never connected.
    """
    if call is not None and call.connected_at is None:
        return None
    if incident.category in settings.survey_sms_skip_categories:
        return None
    if incident.category in settings.rvr_categories:  # whatever the skip list says
        return None
    if response_for(session, incident.id or 0) is not None:
        return None
    if session.exec(select(SurveyLink.id).where(SurveyLink.incident_id == incident.id)).first():
        return None
    token = secrets.token_urlsafe(32)
    send_at = utcnow() + timedelta(minutes=settings.survey_sms_delay_minutes)
    link = SurveyLink(
        incident_id=incident.id or 0,
        call_id=call.id if call else None,
        token_hash=hash_token(token),
        expires_at=send_at + timedelta(days=settings.survey_link_days),
    )
    session.add(link)
    session.flush()
    url = f"{settings.effective_public_url}/s/{token}"
    invite = session.get(Invite, call.invite_id) if call is not None else None
    language = invite.language if invite is not None else settings.caller_language_default
    message = messages.queue_sms(
        session,
        Actor(audit.SYSTEM),
        settings=settings,
        to_phone=incident.caller_phone,
        body=i18n.gettext(language, settings.sms_survey_template).format(
            force_name=settings.force_name, link=url
        ),
        reference=f"survey-{link.id}",
        incident_id=incident.id,
        not_before=send_at,
        purpose="survey",
    )
    link.message_id = message.id
    session.add(link)
    session.flush()
    return link


def after_call(session: Session, settings: Settings, call: Call) -> SurveyLink | None:
    """When a video call ends: the SMS offer, for a caller who closed the page."""
    invite = session.get(Invite, call.invite_id)
    incident = session.get(Incident, call.incident_id)
    if invite is None or invite.kind != "video" or incident is None:
        return None
    return offer_by_sms(session, settings, incident, call)


def open_sms_link(session: Session, token: str) -> tuple[SurveyLink, Incident] | SurveyProblem:
    if not token or len(token) > 128:
        return SurveyProblem.UNKNOWN
    link = session.exec(
        select(SurveyLink).where(SurveyLink.token_hash == hash_token(token))
    ).first()
    if link is None:
        return SurveyProblem.UNKNOWN
    incident = session.get(Incident, link.incident_id)
    if incident is None:
        return SurveyProblem.UNKNOWN
    if link.used_at is not None or response_for(session, link.incident_id) is not None:
        return SurveyProblem.ANSWERED
    if link.expires_at <= utcnow():
        return SurveyProblem.EXPIRED
    return link, incident


def language_of(session: Session, token: str) -> str | None:
    """The language of the call a survey SMS link follows (its invite's), if any."""
    link = session.exec(
        select(SurveyLink).where(SurveyLink.token_hash == hash_token(token))
    ).first()
    call = session.get(Call, link.call_id) if link is not None and link.call_id else None
    invite = session.get(Invite, call.invite_id) if call is not None else None
    return invite.language if invite is not None else None


def open_on_page(
    session: Session, invite_token: str, device_hash: str | None
) -> tuple[Call, Incident] | SurveyProblem:
    """The ended call an invite link leads to, for the survey on the call page."""
    if not invite_token or len(invite_token) > 128:
        return SurveyProblem.UNKNOWN
    invite = session.exec(
        select(Invite).where(Invite.token_hash == hash_token(invite_token))
    ).first()
    if invite is None or invite.kind != "video":
        return SurveyProblem.UNKNOWN
    # Newest first: a caller who rejoined is asked once the last call has ended, about
    # the newest call that connected.
    calls = session.exec(
        select(Call).where(Call.invite_id == invite.id).order_by(col(Call.id).desc())
    ).all()
    newest = calls[0]
    if newest.caller_device_hash is None or newest.caller_device_hash != device_hash:
        return SurveyProblem.UNKNOWN
    if CallState(newest.state) not in FINAL_STATES:
        return SurveyProblem.NOT_YET
    call = next((c for c in calls if c.connected_at is not None), None)
    if call is None:
        return SurveyProblem.NOT_YET
    incident = session.get(Incident, call.incident_id)
    if incident is None:
        return SurveyProblem.UNKNOWN
    if response_for(session, incident.id or 0) is not None:
        return SurveyProblem.ANSWERED
    return call, incident


def answer(
    session: Session,
    incident: Incident,
    answers: Answers,
    channel: str,
    source: str,
    call: Call | None = None,
) -> SurveyResponse | SurveyProblem:
    """Keep the answers; spend the SMS link and withdraw an SMS not yet sent."""
    if response_for(session, incident.id or 0) is not None:
        return SurveyProblem.ANSWERED
    response = SurveyResponse(
        incident_id=incident.id or 0,
        call_id=call.id if call else None,
        cohort=cohort_of(session, incident) or SERVICE,
        channel=channel,
        handling=answers.handling,
        outcome=answers.outcome,
        use_again=answers.use_again,
        comment=answers.comment,
    )
    session.add(response)
    session.flush()
    for link in session.exec(select(SurveyLink).where(SurveyLink.incident_id == incident.id)):
        if link.used_at is None:
            link.used_at = utcnow()
            session.add(link)
        message = session.get(OutboundMessage, link.message_id) if link.message_id else None
        if message is not None:
            messages.cancel(session, Actor(audit.SYSTEM), message)
    audit.record(
        session,
        Actor("caller", source),
        "survey.answered",
        object_type="survey",
        object_id=response.id or "",
        detail={"channel": channel, "cohort": response.cohort},
    )
    return response
