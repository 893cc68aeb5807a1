"""`evr serve` with no configuration at all, as `make run` starts it."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.support.process import https_get, start_serve, stop, wait_healthy

PORT = 8443
BASE = f"https://127.0.0.1:{PORT}"
METRICS = "https://127.0.0.1:8444"  # the monitoring listener's defaults: loopback, 8444


def test_serve_on_embedded_defaults(tmp_path: Path) -> None:
    process = start_serve(tmp_path)
    try:
        wait_healthy(BASE, process)
        status, body = https_get(METRICS + "/metrics")
        assert status == 200
        check = subprocess.run(
            [shutil.which("promtool") or "promtool", "check", "metrics"],
            input=body,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 0, check.stderr
        served = ssl.get_server_certificate(("127.0.0.1", PORT))
    finally:
        output = stop(process)
    assert process.returncode == 0, output

    assert (tmp_path / "var" / "evr.db").is_file()
    assert oct((tmp_path / "var").stat().st_mode & 0o777) == "0o700"
    key_mode = (tmp_path / "var" / "tls" / "key.pem").stat().st_mode & 0o777
    assert key_mode == 0o600
    cert = x509.load_pem_x509_certificate(served.encode())
    printed = re.search(r"SHA-256\s+([0-9A-F:]{95})", output).group(1)
    assert printed == cert.fingerprint(hashes.SHA256()).hex(":").upper()
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(a) for a in names.get_values_for_type(x509.IPAddress)}
    assert re.search(r"username\s+admin\n\s+password\s+\S{20}", output)

    # A second start keeps the data and the certificate and prints no new password.
    again = start_serve(tmp_path)
    try:
        wait_healthy(BASE, again)
    finally:
        second = stop(again)
    assert "password" not in second.split("SHA-256")[1]
    assert printed in second
