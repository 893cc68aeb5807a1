"""The dev box's self-signed certificate, and the TLS context for serving.

A force replaces it with its own certificate (``tls_cert`` / ``tls_key``); until
then the fingerprint printed at start lets a user check what their browser shows.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import ssl
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=397)


def local_addresses() -> set[str]:
    """The box's own IP addresses: from ``ip -j address`` where iproute2 exists."""
    found = {"127.0.0.1", "::1"}
    try:
        out = subprocess.run(
            ["ip", "-j", "address", "show"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
        for link in json.loads(out):
            for info in link.get("addr_info", []):
                if info.get("scope") in ("global", "host") and info.get("local"):
                    found.add(info["local"])
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    except OSError:
        pass
    return found


def make_self_signed(cert_path: Path, key_path: Path, names: set[str] | None = None) -> None:
    """Write a P-256 key and a certificate for localhost, the hostname and the addresses."""
    hostname = socket.gethostname()
    dns = {"localhost", hostname, socket.getfqdn()} | (names or set())
    sans: list[x509.GeneralName] = []
    for name in sorted(dns):
        try:
            ipaddress.ip_address(name)
        except ValueError:
            sans.append(x509.DNSName(name))
    for address in sorted(local_addresses()):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(address.split("%")[0])))
        except ValueError:
            continue
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "EVR appliance (self-signed)"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load_certificate(cert_path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_path.read_bytes())


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context
