"""The box's Ed25519 key: it signs export bundles so a receiving system can tell where
a bundle came from and that nothing in it changed (docs/evidence.md)."""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.config import SettingsError
from appliance.services.evidence.master_key import write_key_file


def ensure_signing_key(path: Path) -> None:
    """Make the key on first start (mode 0600, never overwritten)."""
    if path.exists():
        load_private(path)
        return
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_key_file(path, pem)


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SettingsError(
            f"invalid setting signing_key_file: {path} is not a readable PEM key ({exc})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError(f"invalid setting signing_key_file: {path} is not an Ed25519 key")
    return key


def public_pem(path: Path) -> bytes:
    return (
        load_private(path)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def sign(path: Path, data: bytes) -> bytes:
    return load_private(path).sign(data)


def verify(public: bytes, data: bytes, signature: bytes) -> bool:
    key = serialization.load_pem_public_key(public)
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(signature, data)
        return True
    except InvalidSignature:
        return False
