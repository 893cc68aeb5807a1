"""The database tables. Import every model here so Alembic sees the whole metadata."""

from appliance.models.api_keys import ApiKey
from appliance.models.audit import AuditEvent
from appliance.models.base import utcnow
from appliance.models.calls import (
    FINAL_STATES,
    Call,
    CallState,
    ChatMessage,
    Invite,
    Recording,
    Snapshot,
)
from appliance.models.incidents import Incident
from appliance.models.messages import UNSENT_STATES, MessageStatus, OutboundMessage
from appliance.models.uploads import SharedLocation, UploadedItem
from appliance.models.users import Role, User, UserRole, WebSession

__all__ = [
    "FINAL_STATES",
    "UNSENT_STATES",
    "ApiKey",
    "AuditEvent",
    "Call",
    "CallState",
    "ChatMessage",
    "Incident",
    "Invite",
    "MessageStatus",
    "OutboundMessage",
    "Recording",
    "Role",
    "SharedLocation",
    "Snapshot",
    "UploadedItem",
    "User",
    "UserRole",
    "WebSession",
    "utcnow",
]
