"""The CAD API's client-certificate listener: mutual TLS on a port of its own.

A TLS server asks for a client certificate per listener, not per path, so a main port
that asked (even optionally) would have every staff and caller browser offer its
certificates or show a picker. This listener serves only the CAD API's routes, with the
app's state and middlewares, and the handshake itself requires a certificate the force
CA issued and still in date (``ssl.CERT_REQUIRED``); the middleware then maps the
verified certificate to an API client (``keys.CLIENT_CERTIFICATES``)."""

from __future__ import annotations

import ssl
from pathlib import Path

from aiohttp import web

from appliance.config import Settings
from appliance.web import keys
from appliance.web.api import incidents
from appliance.web.app import MAX_REQUEST_BYTES


def client_certificate_context(cert_path: Path, key_path: Path, ca_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(cert_path, key_path)
    return context


async def start(app: web.Application, settings: Settings) -> web.AppRunner | None:
    """Serve the CAD API beside ``app`` (started already: its state is shared), or
    nothing when no client CA is configured."""
    if settings.cad_client_ca_file is None:
        return None
    cad = web.Application(middlewares=list(app.middlewares), client_max_size=MAX_REQUEST_BYTES)
    for key in app:
        cad[key] = app[key]
    cad[keys.CLIENT_CERTIFICATES] = dict(settings.cad_client_certificates)
    cad.router.add_routes(incidents.routes)
    runner = web.AppRunner(cad, access_log=None)
    await runner.setup()
    cert_path, key_path = settings.tls_paths
    context = client_certificate_context(cert_path, key_path, settings.cad_client_ca_file)
    site = web.TCPSite(runner, settings.host, settings.cad_client_port, ssl_context=context)
    await site.start()
    return runner
