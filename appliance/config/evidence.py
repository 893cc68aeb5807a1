"""What is kept and for how long: retention, minimisation, statements, uploads."""

from __future__ import annotations

from pydantic import BaseModel, Field

from appliance.config.defaults import DEFAULT_DECLARATION


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
