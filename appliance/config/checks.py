"""Checks that settings of several domains share, so each says its refusal the same way."""

from __future__ import annotations

import ssl
from pathlib import Path


def usable_ca_file(value: Path | None) -> Path | None:
    """A CA bundle that TLS can load, checked at start-up rather than at the first handshake."""
    if value is None:
        return None
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(value))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use {value} as a CA certificate: {exc}") from None
    return value


def certificate_holds_key(certificate: Path, private_key: Path) -> bool:
    """Whether the PEM ``certificate`` carries the public half of the PEM ``private_key``
    (both already read once by their own checks)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    key = load_pem_private_key(private_key.read_bytes(), password=None)
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return bool(cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki))
