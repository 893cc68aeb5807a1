"""What is kept and for how long: retention, minimisation, statements, uploads."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator
from pyrage import RecipientError, x25519

from appliance.config.defaults import DEFAULT_DECLARATION

# Evidence files: kept ``retention_days`` after they were made unless a rule keeps them.
FILE_KINDS = ("recording", "snapshot", "upload")
# Records of an incident: minimised (free text and personal data removed) this many days
# after the incident closed (``minimise_after_days`` unless a kind has its own).
RECORD_KINDS = ("chat", "location", "survey_answer", "incident_record")


class EvidenceSettings(BaseModel):
    retention_days: int = Field(
        30,
        ge=1,
        description="Recordings, snapshots and uploads not marked evidential are deleted "
        "this many days after they were made.",
    )
    minimise_after_days: int = Field(
        365,
        ge=1,
        description="A closed incident's caller details (name, phone, location) are removed "
        "this many days after it closed, unless any of its evidence is evidential or on hold.",
    )
    retention_by_kind: dict[str, int] = Field(
        default_factory=dict,
        description="Days per kind of record, overriding retention_days for evidence files "
        "(recording, snapshot, upload: after made) and minimise_after_days for records "
        "(chat, location, survey_answer, incident_record: after the incident closed). A "
        "signed statement is not a kind here: it is evidential by rule.",
    )
    retention_by_outcome: dict[str, int] = Field(
        default_factory=dict,
        description="Days an evidence file of a closed incident with this outcome code is "
        "kept after it was made, overriding retention_by_kind (a MoPI review group).",
    )
    retention_by_category: dict[str, int] = Field(
        default_factory=dict,
        description="Days an evidence file of a closed incident of this category is kept "
        "after it was made, overriding retention_by_kind (retention_by_outcome wins).",
    )
    evidential_outcomes: list[str] = Field(
        ["crime_recorded"],
        description="Outcome codes that mean the incident went to investigation: its files "
        "become evidential by rule, with a review date evidential_review_days after it closed.",
    )
    evidential_review_days: int = Field(
        2190,
        ge=1,
        description="Review date of evidence kept by rule (a signed statement, an incident "
        "gone to investigation), in days after the incident closed (MoPI group 3: six years).",
    )
    backup_recipient: str | None = Field(
        None,
        description="An age X25519 public key (age1...) of the force: `evr backup` encrypts "
        "the database in each backup to it (the media are sealed already); `evr restore "
        "--identity FILE` needs the matching secret key.",
    )
    purge_interval_minutes: int = Field(
        60, ge=0, description="How often the server runs the purge; 0: only `evr purge`."
    )
    upload_max_file_bytes: int = Field(
        200 * 1024**2,
        ge=1024,
        description="Largest single photo or video a caller may send.",
    )
    upload_max_total_bytes: int = Field(
        1024**3,
        ge=1024,
        description="Most one upload link may receive in all; reaching it spends the link.",
    )
    upload_max_files: int = Field(
        20, ge=1, le=1000, description="Most files one upload link may receive."
    )
    upload_resume_hours: float = Field(
        24,
        gt=0,
        le=168,
        description="How long a file sent in parts waits for its next part (a caller who "
        "lost signal coming back to finish it); then what arrived of it is deleted.",
    )
    upload_max_image_pixels: int = Field(
        50_000_000,
        ge=1_000_000,
        le=500_000_000,
        description="Largest photo (width × height, read from its header) a caller may send: "
        "a bigger one is refused before it is decoded (a small file can declare a huge image).",
    )
    statement_declaration: str = Field(
        DEFAULT_DECLARATION,
        min_length=20,
        max_length=2000,
        description="The declaration a witness signs under their statement, printed on the PDF "
        "(the Criminal Justice Act 1967 s.9 wording by default).",
    )
    statement_sign_hours: float = Field(
        24,
        gt=0,
        le=168,
        description="How long after the call ends the caller's link can still read and sign "
        "a statement sent to it.",
    )

    @field_validator("retention_by_kind")
    @classmethod
    def _kinds(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(FILE_KINDS) - set(RECORD_KINDS))
        if unknown:
            raise ValueError(
                f"unknown kind {', '.join(unknown)}: use {', '.join(FILE_KINDS + RECORD_KINDS)}"
            )
        if any(days < 1 for days in value.values()):
            raise ValueError("days must be 1 or more")
        return value

    @field_validator("backup_recipient")
    @classmethod
    def _recipient(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            x25519.Recipient.from_str(value.strip())
        except RecipientError:
            raise ValueError("is not an age X25519 public key (age1...)") from None
        return value.strip()

    @field_validator("retention_by_outcome", "retention_by_category")
    @classmethod
    def _days(cls, value: dict[str, int]) -> dict[str, int]:
        if any(days < 1 for days in value.values()):
            raise ValueError("days must be 1 or more")
        return value

    def retention_days_for(self, kind: str) -> int:
        """The days one kind is kept (files: after made; records: after the incident closed)."""
        default = self.retention_days if kind in FILE_KINDS else self.minimise_after_days
        return self.retention_by_kind.get(kind, default)
