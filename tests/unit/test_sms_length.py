"""SMS parts counted as networks count them (appliance/sms.py): GSM-7 at 160 in one part
and 153 a part once split, its extension characters counting two; anything outside
GSM-7 (Welsh ŵ, Arabic script) makes the whole text UCS-2 at 70 and 67."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from appliance import i18n, sms
from appliance.config import SettingsError, load_settings
from appliance.config.defaults import DEFAULT_SMS_INVITE
from appliance.services.intake import appointments


def test_gsm7_fits_160_in_one_part_and_153_a_part_once_split() -> None:
    assert sms.length("a" * 160) == sms.Length(sms.GSM7, 160, 1)
    assert sms.length("a" * 161) == sms.Length(sms.GSM7, 161, 2)
    assert sms.length("a" * 306) == sms.Length(sms.GSM7, 306, 2)
    assert sms.length("a" * 307).segments == 3
    assert sms.length("€" * 80) == sms.Length(sms.GSM7, 160, 1)  # escaped: two each
    assert sms.length("dyma'r ddolen: https://evr.example/v/x").encoding == sms.GSM7


def test_one_character_outside_gsm7_makes_the_whole_text_ucs2_at_70_and_67() -> None:
    welsh = "Mae'r ddolen hon ar gyfer eich galwad fideo gyda'r swyddog: dŵr a tŷ"
    assert sms.length(welsh).encoding == sms.UCS2
    assert sms.length("ŵ" * 70) == sms.Length(sms.UCS2, 70, 1)
    assert sms.length("ŵ" * 71) == sms.Length(sms.UCS2, 71, 2)
    assert sms.length("ŷ" * 134).segments == 2 and sms.length("ŷ" * 135).segments == 3
    arabic = "مكالمة فيديو"
    assert sms.length(arabic) == sms.Length(sms.UCS2, len(arabic), 1)
    assert sms.length("🙂").units == 2  # UTF-16: a surrogate pair


def test_a_template_that_needs_more_parts_than_allowed_is_refused_at_start_up() -> None:
    """The default wording with the longest link fits 2 parts; a long UCS-2 wording
    (one ŵ) with sms_max_segments 2 is refused, naming the template and the language."""
    load_settings(force_name="Heddlu Dyfed-Powys", sms_max_segments=2, public_url="https://e.test")
    long = "{force_name}: " + "dŵr " * 30 + "{link}"
    with pytest.raises(SettingsError, match=r"sms_invite_template needs \d SMS parts in en"):
        load_settings(
            force_name="Dyfed-Powys",
            sms_invite_template=long,
            sms_max_segments=2,
            public_url="https://e.test",
        )


@pytest.mark.parametrize(
    ("code", "word"),
    [("cy", "heddlu"), ("cy", "trais"), ("cy", "cam-drin"), ("ar", "الشرطة"), ("ar", "العنف")],
)
def test_the_unsafe_word_check_reads_every_offered_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, word: str
) -> None:
    """A Welsh (or Arabic) catalogue whose invite SMS says "heddlu" ("trais", "cam-drin",
    "الشرطة", "العنف") is refused at start-up though the English wording is neutral: the
    check runs on each offered language's text, and their words are on the default list.
    The other offered catalogues are the real ones."""
    for other in i18n.OFFERED:
        if other not in (i18n.SOURCE, code):
            shutil.copytree(i18n.LOCALE_DIR / other, tmp_path / other)
    folder = tmp_path / code / "LC_MESSAGES"
    folder.mkdir(parents=True)
    catalogue = Catalog(locale=code)
    catalogue.add(DEFAULT_SMS_INVITE, "{force_name}: " + word + " {link}")
    with (folder / "messages.po").open("wb") as file:
        write_po(file, catalogue)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    for cached in (i18n.catalogue, i18n.translations):
        cached.cache_clear()
    try:
        with pytest.raises(SettingsError, match=f"sms_invite_template must stay neutral.*{word}"):
            load_settings(force_name="Dyfed-Powys")
    finally:
        monkeypatch.undo()
        for cached in (i18n.catalogue, i18n.translations):
            cached.cache_clear()
    load_settings(force_name="Dyfed-Powys")  # the real wording is neutral in every language


def test_an_appointments_sms_is_in_the_default_caller_language() -> None:
    """With Welsh as the box's default, the booking, reminder and cancellation SMS and
    their date are Welsh (Babel's month and day names), and each fits its parts."""
    settings = load_settings(force_name="Heddlu Gogledd Cymru", caller_language_default="cy")
    at = datetime(2027, 3, 28, 9, 0, tzinfo=UTC)
    texts = [
        appointments.booking_text(settings, at, "https://e.test/v/x"),
        appointments.reminder_text(settings, at, "https://e.test/v/x"),
        appointments.cancellation_text(settings, at),
    ]
    assert (
        "mae eich galwad fideo wedi'i threfnu ar gyfer Dydd Sul 28 Mawrth 2027 am 10:00"
        in (texts[0])
    )
    assert "nodyn atgoffa" in texts[1] and "wedi'i chanslo" in texts[2]
    assert not any("video call" in text or "March" in text for text in texts)
    assert all(sms.length(text).segments <= settings.sms_max_segments for text in texts)


def test_an_arabic_appointments_date_has_arabic_names_and_western_digits() -> None:
    """In Arabic the day and month are Arabic words (Babel's) and the digits stay 0–9,
    as a UK phone shows them and the officer reads them: no Arabic-Indic digits; the
    time is the 24-hour HH:MM the Welsh and English texts use."""
    settings = load_settings(force_name="Wessex Police", caller_language_default="ar")
    text = appointments.booking_text(
        settings, datetime(2027, 3, 28, 9, 0, tzinfo=UTC), "https://e.test/v/x"
    )
    assert "الأحد 28 مارس 2027" in text and "10:00" in text
    assert not any("\u0660" <= c <= "\u0669" or "\u06f0" <= c <= "\u06f9" for c in text)
