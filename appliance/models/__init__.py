"""The database tables. Import every model here so Alembic sees the whole metadata."""

from appliance.models.api_keys import ApiKey
from appliance.models.appointments import (
    ACTIVE_APPOINTMENT_STATES,
    Appointment,
    AppointmentState,
)
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
from appliance.models.evidence import EvidenceFile, FileKind, FileStatus
from appliance.models.incidents import Incident
from appliance.models.messages import UNSENT_STATES, MessageStatus, OutboundMessage
from appliance.models.officer import (
    THRIVE_PARTS,
    THRIVE_RATINGS,
    IncidentNote,
    ThriveAssessment,
)
from appliance.models.uploads import SharedLocation, UploadedItem
from appliance.models.users import Role, User, UserRole, WebSession

__all__ = [
    "ACTIVE_APPOINTMENT_STATES",
    "FINAL_STATES",
    "THRIVE_PARTS",
    "THRIVE_RATINGS",
    "UNSENT_STATES",
    "ApiKey",
    "Appointment",
    "AppointmentState",
    "AuditEvent",
    "Call",
    "CallState",
    "ChatMessage",
    "EvidenceFile",
    "FileKind",
    "FileStatus",
    "Incident",
    "IncidentNote",
    "Invite",
    "MessageStatus",
    "OutboundMessage",
    "Recording",
    "Role",
    "SharedLocation",
    "Snapshot",
    "ThriveAssessment",
    "UploadedItem",
    "User",
    "UserRole",
    "WebSession",
    "utcnow",
]
