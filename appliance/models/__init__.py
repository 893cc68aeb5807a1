"""The database tables. Import every model here so Alembic sees the whole metadata."""

from appliance.models.audit import AuditEvent
from appliance.models.base import utcnow
from appliance.models.users import Role, User, UserRole, WebSession

__all__ = ["AuditEvent", "Role", "User", "UserRole", "WebSession", "utcnow"]
