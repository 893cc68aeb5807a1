"""The privacy notice and the consent pages say what the settings say, and each
consent records which notice was shown.

A notice's version is the hash of what makes the page: the page's template, the
notice's own partial and the settings it shows (controller, DPO, retention of each
kind, processors, upload limits, the RVR page's neutral look). Change a retention
period or the SMS provider and the version changes. The first consent under a version
keeps its template, partial and settings (``notice_texts``), so a consent's
``notice_version`` leads to exactly what the caller was shown.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session

from appliance import i18n
from appliance.config import Settings
from appliance.config.evidence import FILE_KINDS, RECORD_KINDS
from appliance.i18n import N_
from appliance.models import NoticeText

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PARTIAL = "caller/_notice.html"
PRIVACY_PAGE = "caller/privacy.html"
CONSENT_PAGES = {
    "video": "caller/consent.html",
    "upload": "caller/consent_upload.html",
    "location": "caller/consent_location.html",
}


@dataclass(frozen=True)
class Processor:
    """Who processes a caller's data: ``name`` in English (the DPIA's), ``label`` the same
    as the catalogue holds it, with ``%(where)s`` for the host it names, and what it does."""

    name: str
    does: str
    label: str = ""
    where: str = ""


@dataclass(frozen=True)
class Notice:
    controller: str
    force_name: str
    dpo_contact: str
    days: dict[str, int]
    evidential_review_years: int
    processors: list[Processor]
    upload_limits: dict[str, int]


SENDS_SMS = N_("sends the text messages with your links; it sees your phone number and the message")
RELAYS_MEDIA = N_(
    "passes the call's encrypted sound and pictures when your network needs it; "
    "it cannot see or hear them"
)


def processors(settings: Settings) -> list[Processor]:
    """Who processes a caller's data for the force, from the settings in use."""
    found = []
    if settings.notify_adapter == "govuk_notify":
        label = N_("GOV.UK Notify (Government Digital Service, Cabinet Office)")
        found.append(Processor(label, SENDS_SMS, label))
    elif settings.notify_adapter == "webhook" and settings.notify_webhook_url:
        host = urlsplit(settings.notify_webhook_url).hostname or "the force's SMS gateway"
        label = N_("The force's SMS gateway (%(where)s)")
        found.append(Processor(label % {"where": host}, SENDS_SMS, label, host))
    if settings.turn_urls:
        hosts = ", ".join(
            sorted(
                {
                    urlsplit(u.replace("turn:", "turn://", 1)).hostname or u
                    for u in settings.turn_urls
                }
            )
        )
        label = N_("Media relay (%(where)s)")
        found.append(Processor(label % {"where": hosts}, RELAYS_MEDIA, label, hosts))
    return found


def of(settings: Settings) -> Notice:
    return Notice(
        controller=settings.controller_name or settings.force_name,
        force_name=settings.force_name,
        dpo_contact=settings.dpo_contact,
        days={kind: settings.retention_days_for(kind) for kind in FILE_KINDS + RECORD_KINDS},
        evidential_review_years=round(settings.evidential_review_days / 365),
        processors=processors(settings),
        upload_limits={
            "max_file_bytes": settings.upload_max_file_bytes,
            "max_total_bytes": settings.upload_max_total_bytes,
            "max_files": settings.upload_max_files,
        },
    )


def _facts(
    settings: Settings, neutral: bool, page: str = "", language: str = i18n.SOURCE
) -> dict[str, Any]:
    """The settings the page shows; in another language than English, also the language
    and the catalogue's translations of the page's and the notice's text, so a kept
    version says exactly what the caller read (an English version is as it was)."""
    facts: dict[str, Any] = asdict(of(settings)) | {"neutral": neutral}
    if neutral:
        facts |= {
            "rvr_page_title": settings.rvr_page_title,
            "rvr_show_force_name": settings.rvr_show_force_name,
        }
    if language != i18n.SOURCE:
        files = {f"appliance/templates/{name}" for name in (page, PARTIAL)} | {
            "appliance/services/governance/notice.py"
        }
        facts |= {
            "language": language,
            "translations": {
                _key(message.id): _translated(language, message.id)
                for message in i18n.template()
                if message.id and any(path in files for path, _line in message.locations)
            },
        }
    return facts


def _key(message_id: str | Sequence[str]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def _translated(language: str, message_id: str | Sequence[str]) -> str | list[str]:
    """A message's translation; a plural one (the notice's "%(num)s days") as every form
    the language has, since which one the caller read depends on the number shown."""
    if isinstance(message_id, str):
        return i18n.gettext(language, message_id)
    found = i18n.catalogue(language).get(tuple(message_id))
    forms = found.string if found is not None and isinstance(found.string, tuple) else message_id
    return list(forms)


def version(
    settings: Settings, page: str, neutral: bool = False, language: str = i18n.SOURCE
) -> str:
    """The hash (128 bits, hex) of one page's template, the notice partial and the
    settings they show (and, in another language, its translations)."""
    digest = hashlib.sha256()
    for name in (page, PARTIAL):
        digest.update((TEMPLATES / name).read_bytes())
    facts = _facts(settings, neutral, page, language)
    digest.update(json.dumps(facts, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def remember(
    session: Session,
    settings: Settings,
    page: str,
    neutral: bool = False,
    language: str = i18n.SOURCE,
) -> str:
    """The version of what this page shows, its text kept the first time it is used."""
    shown = version(settings, page, neutral, language)
    if session.get(NoticeText, shown) is None:
        session.add(
            NoticeText(
                version=shown,
                page=page,
                template=(TEMPLATES / page).read_text(encoding="utf-8"),
                partial=(TEMPLATES / PARTIAL).read_text(encoding="utf-8"),
                facts=_facts(settings, neutral, page, language),
            )
        )
        session.flush()
    return shown
