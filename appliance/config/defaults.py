"""Defaults and fixed lists the settings share."""

from __future__ import annotations

import re
from pathlib import Path

from appliance.i18n import N_

DEFAULT_CONFIG_FILE = Path("/etc/evr/evr.toml")
SMS_TEMPLATES = (
    "sms_invite_template",
    "sms_upload_template",
    "sms_location_template",
    "sms_survey_template",
    "rvr_sms_template",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = {day: f"{day}day" for day in ("mon", "fri", "sun")} | {
    "tue": "tuesday",
    "wed": "wednesday",
    "thu": "thursday",
    "sat": "saturday",
}
HOURS_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)")
DEFAULT_SMS_INVITE = N_("{force_name}: here is the link for your video call: {link}")
DEFAULT_SMS_UPLOAD = N_("{force_name}: here is the link to send your photos and videos: {link}")
DEFAULT_SMS_LOCATION = N_("{force_name}: here is the link to share where you are: {link}")
DEFAULT_RVR_SMS = N_("Here is the link for your appointment: {link}")
DEFAULT_UNSAFE_WORDS = (
    "police",
    "crime",
    "abuse",
    "abuser",
    "domestic",
    "violence",
    "victim",
    "offence",
    "offender",
    "assault",
    "refuge",
    "999",
    "101",
    # Welsh, with the mutated forms a sentence gives them (trais: drais, thrais, nhrais).
    "heddlu",
    "trais",
    "drais",
    "thrais",
    "nhrais",
    "cam-drin",
    "gam-drin",
    "camdriniaeth",
    "gamdriniaeth",
    "trosedd",
    "drosedd",
    "dioddefwr",
    "ddioddefwr",
    "ymosodiad",
    "lloches",
    "domestig",
    # Arabic, with the article and the prefixes a word takes (and, by, for: و ب ل), since
    # they join the word and a whole-word match would miss them.
    "شرطة",
    "الشرطة",
    "للشرطة",
    "بالشرطة",
    "والشرطة",
    "جريمة",
    "الجريمة",
    "عنف",
    "العنف",
    "والعنف",
    "إساءة",
    "الإساءة",
    "اعتداء",
    "الاعتداء",
    "ضحية",
    "الضحية",
    "منزلي",
    "المنزلي",
    "الأسري",
    "ملجأ",
    "الملجأ",
)
DEFAULT_SMS_SURVEY = N_("{force_name}: please tell us how we did. It takes a minute: {link}")
# South, west, north, east: Great Britain, Northern Ireland, the Isle of Man, the
# Channel Islands, Scilly, Shetland, with a margin.
UK_BOUNDS = [49.0, -8.8, 61.0, 2.0]
DEFAULT_DECLARATION = N_(
    "This statement is true to the best of my knowledge and belief and I make it knowing "
    "that, if it is tendered in evidence, I shall be liable to prosecution if I have wilfully "
    "stated in it anything which I know to be false, or do not believe to be true."
)
CAD_EVENTS = (
    "incident.outcome",
    "incident.closed",
    "call.connected",
    "call.ended",
    "statement.signed",
)

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
NOTIFY_KEY_RE = re.compile(rf".+-{UUID_RE.pattern}-{UUID_RE.pattern}", re.I)

# pydantic builds the sources inside the constructor, with no argument of ours to
# carry the TOML path there, so it travels in a context variable.
