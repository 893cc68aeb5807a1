"""What each notice version said: the page's template, the notice partial and the
settings shown, kept the first time a consent is recorded under it, so the force can
show a caller what they agreed to without the repository's history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from appliance.models.base import now_field


class NoticeText(SQLModel, table=True):
    __tablename__ = "notice_texts"

    version: str = Field(primary_key=True, max_length=32)
    page: str = Field(max_length=64)
    template: str = Field(sa_column=Column(Text, nullable=False))
    partial: str = Field(sa_column=Column(Text, nullable=False))
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    first_shown_at: datetime = now_field()
