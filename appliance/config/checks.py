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
