"""The database tables. Import every model here so Alembic sees the whole metadata."""

from appliance.models.api_keys import ApiKey
from appliance.models.appointments import (
    ACTIVE_APPOINTMENT_STATES,
    Appointment,
    AppointmentState,
)
from appliance.models.audit import AuditEvent
from appliance.models.base import utcnow
from appliance.models.cad import CadDelivery, DeliveryState
from appliance.models.calls import (
    FINAL_STATES,
    Call,
    CallState,
    ChatMessage,
    Invite,
    Recording,
    Snapshot,
)
from appliance.models.evaluation import (
    ARMS,
    USUAL_ARM,
    VIDEO_ARM,
    ArmAlreadyRevealed,
    SurveyLink,
    SurveyResponse,
    Trial,
    TrialAllocation,
    TrialBlock,
)
from appliance.models.evidence import EvidenceFile, FileKind, FileStatus
from appliance.models.governance import NoticeText
from appliance.models.guests import GUEST_ROLES, GuestInvite
from appliance.models.handovers import CallHandover
from appliance.models.incidents import Incident
from appliance.models.messages import PURPOSES, UNSENT_STATES, MessageStatus, OutboundMessage
from appliance.models.officer import (
    DRAFT_FORMS,
    THRIVE_PARTS,
    THRIVE_RATINGS,
    IncidentNote,
    OfficerDraft,
    ThriveAssessment,
)
from appliance.models.rvr import (
    DASH_ANSWERS,
    DISCLOSURE_KINDS,
    RISK_LEVELS,
    DashAssessment,
    Disclosure,
    RvrCase,
)
from appliance.models.statements import SignedBy, Statement, StatementState
from appliance.models.uploads import LocationFix, SharedLocation, UploadedItem, UploadSession
from appliance.models.users import (
    GrantState,
    RecoveryCode,
    Role,
    RoleGrant,
    SecurityKey,
    TotpFactor,
    User,
    UserRole,
    WebSession,
)
from appliance.models.viewers import ViewerLink

__all__ = [
    "ACTIVE_APPOINTMENT_STATES",
    "ARMS",
    "DASH_ANSWERS",
    "DISCLOSURE_KINDS",
    "DRAFT_FORMS",
    "FINAL_STATES",
    "GUEST_ROLES",
    "PURPOSES",
    "RISK_LEVELS",
    "THRIVE_PARTS",
    "THRIVE_RATINGS",
    "UNSENT_STATES",
    "USUAL_ARM",
    "VIDEO_ARM",
    "ApiKey",
    "Appointment",
    "AppointmentState",
    "ArmAlreadyRevealed",
    "AuditEvent",
    "CadDelivery",
    "Call",
    "CallHandover",
    "CallState",
    "ChatMessage",
    "DashAssessment",
    "DeliveryState",
    "Disclosure",
    "EvidenceFile",
    "FileKind",
    "FileStatus",
    "GrantState",
    "GuestInvite",
    "Incident",
    "IncidentNote",
    "Invite",
    "LocationFix",
    "MessageStatus",
    "NoticeText",
    "OfficerDraft",
    "OutboundMessage",
    "Recording",
    "RecoveryCode",
    "Role",
    "RoleGrant",
    "RvrCase",
    "SecurityKey",
    "SharedLocation",
    "SignedBy",
    "Snapshot",
    "Statement",
    "StatementState",
    "SurveyLink",
    "SurveyResponse",
    "ThriveAssessment",
    "TotpFactor",
    "Trial",
    "TrialAllocation",
    "TrialBlock",
    "UploadSession",
    "UploadedItem",
    "User",
    "UserRole",
    "ViewerLink",
    "WebSession",
    "utcnow",
]
