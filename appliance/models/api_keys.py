"""API keys for the force's integrations (the CAD system). Only a hash is kept."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from appliance.models.base import now_field, time_field


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    created_by: str = Field(max_length=128)
    created_at: datetime = now_field()
    revoked_at: datetime | None = time_field()
    last_used_at: datetime | None = time_field()
