"""The caller survey, the randomised trial and the evaluation's unit costs."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from appliance.config.defaults import DEFAULT_SMS_SURVEY


class EvaluationSettings(BaseModel):
    sms_survey_template: str = Field(
        DEFAULT_SMS_SURVEY,
        min_length=10,
        max_length=300,
        description="The SMS with the caller survey's link; same rules as sms_invite_template.",
    )
    survey_sms_delay_minutes: int = Field(
        120,
        ge=0,
        le=30 * 24 * 60,
        description="The survey SMS goes this long after a video call ends (or an in-person "
        "response is recorded), unless the caller has answered on the call page by then.",
    )
    survey_link_days: int = Field(
        14, ge=1, le=90, description="How long the survey link in the SMS works."
    )
    survey_sms_skip_categories: list[str] = Field(
        ["Domestic abuse"],
        description="Incident categories whose callers are never sent the survey by SMS (a "
        "later text may be read by the abuser); they can still answer on the call page.",
    )
    trial_block_sizes: list[int] = Field(
        [4, 6],
        min_length=1,
        description="Block sizes of the randomised trial; each block's size is drawn from "
        "this list and holds as many video as usual-response places. Even numbers only.",
    )
    evaluation_positive_rating: int = Field(
        4,
        ge=2,
        le=5,
        description="A survey rating (1-5) at or above this counts as positive / satisfied.",
    )
    evaluation_visit_officer_hours: float = Field(
        2.0,
        ge=0,
        le=48,
        description="Officer hours an in-person attendance takes, travel included (unit cost "
        "for the time-saved measure).",
    )
    evaluation_video_officer_hours: float = Field(
        0.75,
        ge=0,
        le=48,
        description="Officer hours a video response takes (set against a visit's hours).",
    )
    evaluation_officer_hour_cost: float = Field(
        40.0, ge=0, description="Cost of one officer hour, in pounds."
    )
    evaluation_visit_travel_cost: float = Field(
        15.0, ge=0, description="Travel cost of one in-person attendance (mileage), in pounds."
    )

    @field_validator("trial_block_sizes")
    @classmethod
    def _block_sizes(cls, value: list[int]) -> list[int]:
        for size in value:
            if size < 2 or size % 2 or size > 20:
                raise ValueError(f"{size} is not an even block size from 2 to 20")
        return value
