"""Staff sign-in: sessions, lockout, passwords, and the force's OpenID provider."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from appliance.config.checks import certificate_holds_key, usable_ca_file
from appliance.models.users import Role


class IdentitySettings(BaseModel):
    session_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="A signed-in session ends after this long unused."
    )
    session_absolute_hours: int = Field(
        12, ge=1, le=7 * 24, description="A session ends this long after sign-in, used or not."
    )
    login_max_failures: int = Field(
        5, ge=1, le=100, description="Consecutive wrong passwords before the account locks."
    )
    login_lockout_seconds: int = Field(
        300,
        ge=1,
        le=86400,
        description="First lock's length; each further lock without a good sign-in doubles it "
        "(at most `login_lockout_max_seconds`).",
    )
    login_lockout_max_seconds: int = Field(
        900,
        ge=60,
        le=86400,
        description="Longest an account stays locked: what a stranger who knows a username "
        "can do to its owner.",
    )
    login_failures_per_source: int = Field(
        10,
        ge=1,
        le=1000,
        description="Failed sign-ins from one address in a minute before that address is "
        "answered 429 without a password check, whatever the username.",
    )
    refusals_per_source: int = Field(
        60,
        ge=1,
        le=100_000,
        description="Other refusals (bad API keys, refused uploads) from one address in a "
        "minute before it is answered 429 without a database look-up.",
    )
    oidc_starts_per_source: int = Field(
        30,
        ge=1,
        le=10_000,
        description="Sign-ins through the force's provider one address may begin in a "
        "minute before it is answered 429: each holds a pending sign-in in memory, and "
        "one address must not push out everyone else's.",
    )
    password_min_length: int = Field(
        12, ge=8, le=128, description="Shortest password a user may choose."
    )
    local_admin_totp_required: bool = Field(
        True,
        description="A box account holding admin reaches nothing but enrolment until it "
        "has confirmed an authenticator app (TOTP) or enrolled a security key (WebAuthn); a "
        "force (OpenID) account's MFA is the provider's. On unless a force turns it off: a "
        "box admin's password alone would open every recording on the box.",
    )
    oidc_issuer: str | None = Field(
        None,
        description="The force's OpenID Connect issuer (for Entra ID "
        "`https://login.microsoftonline.com/<tenant>/v2.0`): set, staff sign in through it "
        "(docs/sign-in.md). Its discovery document and signing keys are read from it; https "
        "only (http is accepted for a loopback address, which only a test uses).",
    )
    oidc_client_id: str | None = Field(
        None, description="The box's client (application) id at the identity provider."
    )
    oidc_client_secret: SecretStr | None = Field(
        None,
        description="The client secret the box sends to the token endpoint (`client_secret_post`).",
    )
    oidc_client_key_file: Path | None = Field(
        None,
        description="Instead of a client secret: a PEM private key (RSA of 2048 bits or "
        "more, or EC P-256) with which the box signs a client assertion for the token "
        "endpoint (`private_key_jwt`, RFC 7523); its certificate is uploaded at the "
        "provider. Set, it is used and `oidc_client_secret` is not sent.",
    )
    oidc_client_key_id: str | None = Field(
        None,
        max_length=128,
        description="The `kid` put in the client assertion's header (with "
        "`oidc_client_key_file`), when the provider needs it to pick the key.",
    )
    oidc_client_certificate_file: Path | None = Field(
        None,
        description="The certificate of `oidc_client_key_file` as uploaded at the provider "
        "(PEM): set, the client assertion's header names it by thumbprint (`x5t`, SHA-1, "
        "and `x5t#S256`), which Entra ID needs to pick the key. It must hold the public "
        "half of that key.",
    )
    oidc_redirect_url: str | None = Field(
        None,
        description="Where the identity provider sends the browser back; registered there "
        "as the redirect URI. Default: `public_url` + `/oidc/callback`.",
    )
    oidc_scopes: list[str] = Field(
        ["openid", "profile", "email"],
        description="Scopes asked for; `openid` is required.",
    )
    oidc_groups_claim: str = Field(
        "groups",
        min_length=1,
        max_length=64,
        description="The ID token claim that holds the user's group ids or app-role values "
        "(Entra ID: `groups` for security groups, `roles` for app roles).",
    )
    oidc_role_map: dict[str, list[str]] = Field(
        {},
        description="IdP group id (or app-role value) → the appliance roles it gives. A user "
        "whose groups map to no role is refused; roles are recomputed at every sign-in. "
        "Set on the box, never on the web: this map is the force's approval of privileged "
        "roles (docs/security.md).",
    )
    oidc_required_amr: list[str] = Field(
        [],
        description="`amr` values that show the IdP did multi-factor sign-in (e.g. `mfa`); "
        "when this or `oidc_required_acr` is set, a token showing none of them is refused.",
    )
    oidc_required_acr: list[str] = Field(
        [],
        description="`acr` values that count as multi-factor sign-in (see "
        "`oidc_required_amr`; either list satisfied is enough).",
    )

    cad_client_ca_file: Path | None = Field(
        None,
        description="The force CA (PEM) whose client certificates the CAD API accepts, on "
        "a listener of its own (`cad_client_port`) that asks every connection for a "
        "certificate; the main port never asks. Set with `cad_client_certificates`.",
    )
    cad_client_port: int = Field(
        8445,
        ge=1,
        le=65535,
        description="The port of the CAD API's client-certificate listener (only the "
        "`/api/v1/` routes; on `host`). Used when `cad_client_ca_file` is set.",
    )
    cad_client_certificates: dict[str, str] = Field(
        {},
        description="A client certificate's subject (RFC 4514, e.g. `CN=cad,O=Force`) or "
        "one of its subject alternative names (`DNS:cad.force.example`, `URI:...`, "
        "`email:...`) → the name of the API client (`evr apikey create NAME`) it acts as; "
        "revoking that client refuses the certificate too. A certificate of the force CA "
        "that matches nothing is refused 403 and audited.",
    )

    @field_validator("cad_client_ca_file")
    @classmethod
    def _client_ca(cls, value: Path | None) -> Path | None:
        return usable_ca_file(value)

    @field_validator("oidc_client_certificate_file")
    @classmethod
    def _client_certificate(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        from cryptography import x509

        try:
            x509.load_pem_x509_certificate(value.read_bytes())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {value} as a PEM certificate: {exc}") from None
        return value

    @field_validator("oidc_client_key_file")
    @classmethod
    def _client_key(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(value.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"cannot read {value} as a PEM private key: {exc}") from None
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
            return value
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            return value
        raise ValueError(f"{value}: an RSA key of 2048 bits or more, or an EC P-256 key")

    @field_validator("oidc_issuer", "oidc_redirect_url")
    @classmethod
    def _oidc_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if not parts.hostname or not (
            parts.scheme == "https" or (parts.scheme == "http" and loopback)
        ):
            raise ValueError("must be an https:// URL")
        return value.rstrip("/") if parts.path.endswith("/") else value

    @model_validator(mode="after")
    def _client_certificates_complete(self) -> IdentitySettings:
        if (self.cad_client_ca_file is None) != (not self.cad_client_certificates):
            raise ValueError("cad_client_ca_file and cad_client_certificates must be set together")
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> IdentitySettings:
        if self.oidc_issuer is None:
            return self
        missing = ["oidc_client_id"] if self.oidc_client_id is None else []
        if self.oidc_client_secret is None and self.oidc_client_key_file is None:
            missing.append("oidc_client_secret (or oidc_client_key_file)")
        if not self.oidc_role_map:
            missing.append("oidc_role_map")
        if self.oidc_client_certificate_file is not None:
            if self.oidc_client_key_file is None:
                missing.append("oidc_client_key_file (for oidc_client_certificate_file)")
            elif not certificate_holds_key(
                self.oidc_client_certificate_file, self.oidc_client_key_file
            ):
                raise ValueError(
                    f"{self.oidc_client_certificate_file} is not the certificate of "
                    f"{self.oidc_client_key_file}: its public key is another"
                )
        if missing:
            raise ValueError(f"oidc_issuer needs {' and '.join(missing)}")
        if "openid" not in self.oidc_scopes:
            raise ValueError("oidc_scopes must include openid")
        known = {role.value for role in Role}
        for group, roles in self.oidc_role_map.items():
            unknown = sorted(set(roles) - known)
            if unknown or not roles:
                raise ValueError(
                    f"oidc_role_map[{group!r}]: give one or more of {', '.join(sorted(known))}"
                    + (f" (not {', '.join(unknown)})" if unknown else "")
                )
        return self
