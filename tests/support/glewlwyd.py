"""Debian's glewlwyd (2.7.5 in bookworm) as a real OpenID provider on loopback, for the
sign-in's happy path in a real browser (tests/e2e/test_sign_in_glewlwyd.py).

The suite's own provider (tests/support/oidc_provider.py) is ours: it signs in whoever a
test names and forges on request, which the refusal tests need. This one is somebody
else's implementation of the protocol, with its own login pages, sessions, consent, PKCE,
second factor and token signing, so a sign-in through it shows the box works with a
provider it was not written beside.

Everything is the test's own: a config file, a SQLite database loaded with the schema the
package ships for dbconfig, a copy of the package's web app, a port. Then the admin REST
API (as the schema's first admin, ``admin``/``password``, reachable only on this
namespace's loopback) makes what a force's IT would: a ``groups`` property on the user
backend, an authenticator-app (TOTP) scheme, a scope ``evr`` that needs the password *and*
that second factor, the OpenID Connect plugin signing with an RS256 key made here (its
``groups`` claim read from the user's property, ``amr`` listing the factors used:
``["password", "otp"]``), a confidential client for the box (``client_secret_post``), and
users with a password, groups and a registered TOTP secret. Started and configured in
well under a second on this box.

Quirks met and how they are met here:
- glewlwyd's static file server answers 404 for the package's web app files that are
  symlinks into other Debian packages (jQuery, Bootstrap, Fork Awesome, the web app's
  ``config.json`` under /etc): it will not follow a link out of its folder. Debian's
  README.Debian says to serve the web app with Apache instead; the suite gives glewlwyd a
  copy of the folder with the links resolved (3 MB, milliseconds).
- ``use_secure_connection`` present at all, even ``false``, demands certificate paths: left
  out. ``cookie_domain`` empty sends ``Domain=`` (Python's cookie jar drops that cookie):
  set to the address.
- The OTP scheme checks a code against the current 30 s step only unless its undocumented
  ``window`` parameter says otherwise (``totp-window`` is only shown to the user): 1 here,
  measured to accept the step before and after, not two away.
- The package has no user middleware modules; glewlwyd logs an error for the missing
  folder it is pointed at, so it is pointed at an empty one.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.live import free_port

GLEWLWYD = "/usr/bin/glewlwyd"
# The schema dbconfig-common would load (the same as /usr/share/doc/glewlwyd/database/
# init.sqlite3.sql.gz without its DROP TABLEs); outside /usr/share/doc, which minimal
# images strip.
SCHEMA = Path("/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3")
WEBAPP = Path("/usr/share/glewlwyd/webapp")
WEBAPP_CONFIG = Path("/etc/glewlwyd/config-2.7.json/config.json")
ADMIN_USERNAME, ADMIN_PASSWORD = "admin", "password"  # the schema's first admin

PLUGIN = "oidc"
SCOPE = "evr"  # needs the password and the authenticator app
OTP_SCHEME = "otp"
CLIENT_ID = "evr-box"
CLIENT_SECRET = "the box's secret at glewlwyd"
KEY_ID = "glewlwyd-rsa-1"

CONFIG = """\
port={port}
bind_address="127.0.0.1"
external_url="{base_url}"
login_url="login.html"
api_prefix="api"
static_files_path="{webapp}/"
allow_origin="*"
log_mode="console"
log_level="INFO"
cookie_domain="127.0.0.1"
cookie_secure=0
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="/usr/lib/glewlwyd/user"
user_middleware_module_path="{middleware}"
client_module_path="/usr/lib/glewlwyd/client"
user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"
plugin_module_path="/usr/lib/glewlwyd/plugin"
hash_algorithm="SHA512"
database={{ type="sqlite3" path="{database}" }};
static_files_mime_types=(
  {{ extension=".html" mime_type="text/html" compress=1 }},
  {{ extension=".css" mime_type="text/css" compress=1 }},
  {{ extension=".js" mime_type="application/javascript" compress=1 }},
  {{ extension=".json" mime_type="application/json" compress=1 }},
  {{ extension=".png" mime_type="image/png" compress=0 }},
  {{ extension=".ico" mime_type="image/x-icon" compress=0 }},
  {{ extension=".woff2" mime_type="font/woff2" compress=0 }},
  {{ extension=".woff" mime_type="font/woff" compress=0 }},
  {{ extension=".ttf" mime_type="font/ttf" compress=0 }}
)
"""


@dataclass
class GlewlwydUser:
    username: str
    password: str
    name: str
    groups: list[str]
    authenticator: pyotp.TOTP  # the user's authenticator app

    def code(self) -> str:
        """The app's code now: one glewlwyd has not seen yet in this test."""
        return self.authenticator.now()


class AdminApi:
    """glewlwyd's REST API with a session cookie, as its admin or as one of its users."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The answer's JSON (None if empty); any status but 200 fails with glewlwyd's
        reasons, which it gives as a JSON list for a refused parameter."""
        request = urllib.request.Request(  # noqa: S310 (our http:// on loopback)
            f"{self.base_url}/api{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=10) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise AssertionError(
                f"glewlwyd {method} {path}: {error.code} {error.read().decode()[:500]}"
            ) from None
        return json.loads(text) if text else None


class Glewlwyd:
    """Started with :func:`running_glewlwyd`; ``issuer`` is the OpenID plugin's."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base_url}/api/{PLUGIN}"
        self.log = folder / "glewlwyd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.admin = AdminApi(self.base_url)
        self.start_seconds = 0.0  # from exec to configured, measured

    # -- the process -----------------------------------------------------------------------

    def start(self) -> None:
        began = time.monotonic()
        database = self.folder / "glewlwyd.db"
        with contextlib.closing(sqlite3.connect(database)) as db:
            db.executescript(SCHEMA.read_text())
        webapp = self.folder / "webapp"
        shutil.copytree(WEBAPP, webapp, ignore=shutil.ignore_patterns("*.map", "config.json"))
        shutil.copy(WEBAPP_CONFIG, webapp / "config.json")
        (self.folder / "middleware").mkdir()
        config = self.folder / "glewlwyd.conf"
        config.write_text(
            CONFIG.format(
                port=self.port,
                base_url=self.base_url,
                webapp=webapp,
                middleware=self.folder / "middleware",
                database=database,
            )
        )
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [GLEWLWYD, f"--config-file={config}"], stdout=out, stderr=subprocess.STDOUT
            )
        self._wait_answering(timeout=30)
        self._configure()
        self.start_seconds = time.monotonic() - began

    def _wait_answering(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"glewlwyd exited:\n{self.log_tail()}"
            try:
                config_url = f"{self.base_url}/config"
                with urllib.request.urlopen(config_url, timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"glewlwyd did not answer in {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, which glewlwyd handles ("Received close signal"), then wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    # -- what force IT would set up ----------------------------------------------------------

    def _configure(self) -> None:
        self.admin.call("POST", "/auth/", {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
        # The database user backend keeps only the properties it is told of: add groups.
        backend = self.admin.call("GET", "/mod/user/database")
        backend["parameters"]["data-format"]["groups"] = {
            "multiple": True,
            "read": True,
            "write": True,
            "profile-read": False,
            "profile-write": False,
        }
        self.admin.call("PUT", "/mod/user/database", backend)
        self.admin.call("PUT", "/mod/user/database/reset")
        # And the client backend, the URLs a client may be sent back to after sign-out.
        clients = self.admin.call("GET", "/mod/client/database")
        clients["parameters"]["data-format"]["post_logout_redirect_uris"] = {
            "multiple": True,
            "read": True,
            "write": True,
        }
        self.admin.call("PUT", "/mod/client/database", clients)
        self.admin.call("PUT", "/mod/client/database/reset")
        self.admin.call(
            "POST",
            "/mod/scheme/",
            {
                "module": "otp",
                "name": OTP_SCHEME,
                "display_name": "Authenticator app",
                "expiration": 600,
                "max_use": 0,
                "allow_user_register": True,
                "parameters": {
                    "otp-length": 6,
                    "issuer": "glewlwyd on loopback",
                    "secret-minimum-size": 16,
                    "hotp-allow": False,
                    "totp-allow": True,
                    "totp-start-offset": 0,
                    # The steps either side accepted at validation (liboath's window; the
                    # documented "totp-window" is only echoed to the profile page): with
                    # none, a code typed as its 30 s step ends is refused.
                    "window": 1,
                },
            },
        )
        self.admin.call(
            "POST",
            "/scope/",
            {
                "name": SCOPE,
                "display_name": "EVR appliance",
                "description": "Sign in to the EVR appliance",
                "password_required": True,
                "password_max_age": 0,
                "scheme": {"second factor": [{"scheme_type": "otp", "scheme_name": OTP_SCHEME}]},
                "scheme_required": {"second factor": 1},
            },
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = {**RSAAlgorithm.to_jwk(key, as_dict=True), "kid": KEY_ID, "alg": "RS256"}
        self.admin.call(
            "POST",
            "/mod/plugin/",
            {
                "module": "oidc",
                "name": PLUGIN,
                "display_name": "OpenID Connect",
                "enabled": True,
                "parameters": {
                    "iss": self.issuer,
                    "jwks-private": json.dumps({"keys": [{**jwk, "use": "sig"}]}),
                    "default-kid": KEY_ID,
                    "jwks-show": True,
                    "access-token-duration": 600,
                    "refresh-token-duration": 3600,
                    "code-duration": 600,
                    "refresh-token-rolling": False,
                    "allow-non-oidc": False,
                    "auth-type-code-enabled": True,
                    "auth-type-refresh-enabled": False,
                    "pkce-allowed": True,
                    "pkce-method-plain-allowed": False,
                    "subject-type": "public",
                    # RP-initiated logout: discovery then names an end_session_endpoint.
                    "session-management-allowed": True,
                    "session-cookie-name": "GLEWLWYD2_OIDC_SID",
                    "session-cookie-expiration": 3600,
                    # Its end-session page lists the session's clients through the
                    # front-channel code, and answers 400 while that is off.
                    "front-channel-logout-allowed": True,
                    "name-claim": "mandatory",
                    "email-claim": "no",
                    "scope-claim": "no",
                    "claims": [
                        {"name": "groups", "user-property": "groups", "mandatory": True},
                        {
                            "name": "preferred_username",
                            "user-property": "username",
                            "mandatory": True,
                        },
                    ],
                },
            },
        )

    def add_client(self, redirect_uri: str, post_logout_redirect_uri: str = "") -> None:
        """The box, as a confidential client sending its secret in the token request."""
        self.admin.call(
            "POST",
            "/client/",
            {
                "client_id": CLIENT_ID,
                "name": "EVR appliance",
                "enabled": True,
                "confidential": True,
                "password": CLIENT_SECRET,
                "redirect_uri": [redirect_uri],
                "post_logout_redirect_uris": [post_logout_redirect_uri]
                if post_logout_redirect_uri
                else [],
                "authorization_type": ["code"],
                "token_endpoint_auth_method": ["client_secret_post"],
                "scope": ["openid", SCOPE],
            },
        )

    def add_user(self, username: str, password: str, name: str, groups: list[str]) -> GlewlwydUser:
        """A user who may ask for the box's scope, with an authenticator app registered
        (by the admin on their behalf, as IT would at enrolment)."""
        self.admin.call(
            "POST",
            "/user/",
            {
                "username": username,
                "name": name,
                "email": "",
                "password": password,
                "scope": ["openid", SCOPE],
                "groups": groups,
                "enabled": True,
            },
        )
        secret = pyotp.random_base32()
        self.admin.call(
            "POST",
            f"/delegate/{username}/profile/scheme/register/",
            {
                "username": username,
                "scheme_type": "otp",
                "scheme_name": OTP_SCHEME,
                "value": {"type": "TOTP", "secret": secret, "time_step_size": 30},
            },
        )
        return GlewlwydUser(username, password, name, groups, pyotp.TOTP(secret))

    def set_groups(self, username: str, groups: list[str]) -> None:
        """Move a user between groups, as force IT does for a mover or a leaver."""
        user = self.admin.call("GET", f"/user/{username}")
        user["groups"] = groups
        self.admin.call("PUT", f"/user/{username}", user)


@contextlib.contextmanager
def running_glewlwyd(folder: Path) -> Iterator[Glewlwyd]:
    """glewlwyd configured as above in ``folder``, stopped at the end."""
    assert Path(GLEWLWYD).exists(), f"{GLEWLWYD} missing: make test installs Debian's glewlwyd"
    provider = Glewlwyd(folder)
    try:
        provider.start()
        yield provider
    finally:
        provider.stop()
