"""Rapid Video Response: its track, its neutral wording and pages, DASH."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from appliance.config.defaults import DEFAULT_RVR_SMS, DEFAULT_UNSAFE_WORDS


class RvrSettings(BaseModel):
    rvr_categories: list[str] = Field(
        ["Domestic abuse"],
        description="Incident categories on the Rapid Video Response track: their own queue, "
        "a target in minutes, the safety questions before the invite and the safe caller pages.",
    )
    rvr_target_minutes: int = Field(
        15,
        ge=1,
        le=24 * 60,
        description="Minutes from an RVR incident's receipt to its video call; RVR work sorts "
        "above all other work on the queue.",
    )
    rvr_link_minutes: int = Field(
        30, ge=5, le=24 * 60, description="An RVR link works for this long after it is sent."
    )
    rvr_sms_template: str = Field(
        DEFAULT_RVR_SMS,
        min_length=10,
        max_length=300,
        description="The RVR invite SMS: {link} (and {force_name}, if the force wants its "
        "name shown) are filled in. Checked against unsafe_words.",
    )
    rvr_page_title: str = Field(
        "Appointment",
        min_length=1,
        max_length=60,
        description="The title and heading of every caller page on the RVR path (what a "
        "browser tab or history shows). Checked against unsafe_words.",
    )
    rvr_show_force_name: bool = Field(
        False,
        description="Show the force's name on the RVR caller pages. Off: the pages carry no "
        "name or crest at all.",
    )
    quick_exit_url: str = Field(
        "https://www.bbc.co.uk/weather",
        description="The harmless site the quick-exit control on the RVR caller pages leaves for.",
    )
    unsafe_words: list[str] = Field(
        list(DEFAULT_UNSAFE_WORDS),
        description="Words that must never appear in the wording of any SMS template or an "
        "RVR caller page's title (whole words, any case); checked at start-up.",
    )
    dash_questions_file: Path | None = Field(
        None,
        description="A JSON file of the force's own DASH questions "
        '([{"id": "...", "text": "..."}, ...]) replacing the shipped short headings.',
    )
    dash_marac_yes_count: int = Field(
        14,
        ge=1,
        le=100,
        description="This many yes answers on the DASH checklist flag a MARAC referral even "
        "when the officer's risk level is not high.",
    )

    @field_validator("quick_exit_url")
    @classmethod
    def _quick_exit_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an https:// (or http://) URL")
        return value
