"""Typed keys for what the app and each request carry."""

from __future__ import annotations

from aiohttp import web

from appliance.config import Settings
from appliance.db import Database
from appliance.live.hub import CallHub
from appliance.models import ApiKey, Role, User, WebSession
from appliance.oidc import RelyingParty
from appliance.services.evidence.custody import ReadLedger
from appliance.services.evidence.master_key import Keyring
from appliance.services.identity.throttle import Guards

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
HUB = web.AppKey("hub", CallHub)
KEYRING = web.AppKey("keyring", Keyring)
GUARDS = web.AppKey("guards", Guards)
READS = web.AppKey("reads", ReadLedger)
# Links made "shown only now", kept for the browser that made them (toolkit.remember_link).
SHOWN_LINKS = web.AppKey("shown_links", dict)
# The force's OpenID provider, when `oidc_issuer` is set (absent otherwise).
OIDC = web.AppKey("oidc", RelyingParty)
# Only on the CAD API's client-certificate listener (web/cad_listener.py): the map from a
# certificate's subject or alternative name to the API client it acts as.
CLIENT_CERTIFICATES = web.AppKey("client_certificates", dict)

USER = web.RequestKey("user", User)
ROLES = web.RequestKey("roles", frozenset)
WEB_SESSION = web.RequestKey("web_session", WebSession)
CSRF = web.RequestKey("csrf", str)
API_CLIENT = web.RequestKey("api_client", ApiKey)
NEW_CSRF_COOKIE = web.RequestKey("new_csrf_cookie", str)
# A password given, the second factor not yet: only the code page knows them.
HALF_SIGNED_IN = web.RequestKey("half_signed_in", User)
# A local admin who must enrol an authenticator before anything else (second_factor).
MUST_ENROL = web.RequestKey("must_enrol", bool)
# A caller page on the RVR path (or a link we cannot place): the neutral look.
NEUTRAL_LOOK = web.RequestKey("neutral_look", bool)
# The language a caller's page is written in (appliance/i18n.py); staff pages have none.
LANGUAGE = web.RequestKey("language", str)

SESSION_COOKIE = "__Host-evr_session"
CSRF_COOKIE = "__Host-evr_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CALLER_DEVICE_COOKIE = "__Host-evr_caller"

__all__ = ["DB", "SETTINGS", "Role", "User", "WebSession"]
