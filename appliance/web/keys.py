"""Typed keys for what the app and each request carry."""

from __future__ import annotations

from aiohttp import web

from appliance.config import Settings
from appliance.db import Database
from appliance.models import Role, User, WebSession

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)

# Per request (plain string keys: aiohttp has no typed request keys).
USER = "evr.user"
ROLES = "evr.roles"
WEB_SESSION = "evr.web_session"
CSRF = "evr.csrf"
NEW_CSRF_COOKIE = "evr.new_csrf_cookie"

SESSION_COOKIE = "__Host-evr_session"
CSRF_COOKIE = "__Host-evr_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

__all__ = ["DB", "SETTINGS", "Role", "User", "WebSession"]
