"""What the HTTP adapters share: one lazily made aiohttp session, and error wording.

``trust_env`` is on so a force's outbound proxy (``HTTPS_PROXY``, ``NO_PROXY``) is
honoured: boxes on a police LAN rarely reach the internet directly.

Redirects are never followed: a receiver that answers 307 or 308 would have the signed
body (an SMS with a caller's number, a CAD event) sent on to wherever it names, and a
compromised receiver could use that to bounce our requests inside the force's network.
A redirect is a failed delivery whose reason says so (``redirect_refused``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

USER_AGENT = "evr-appliance"


class HttpClient:
    """``ca_file``: trust this CA (PEM) as well as the system's, for a force's own PKI."""

    def __init__(self, timeout_s: float, ca_file: Path | None = None) -> None:
        self.timeout_s = timeout_s
        self.ssl: ssl.SSLContext | bool = True
        if ca_file is not None:
            self.ssl = ssl.create_default_context()
            self.ssl.load_verify_locations(cafile=str(ca_file))
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers={"User-Agent": USER_AGENT},
                trust_env=True,
                connector=aiohttp.TCPConnector(ssl=self.ssl),
            )
        return self._session

    @asynccontextmanager
    async def post(self, url: str, **kwargs: Any) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST without following redirects: a 3xx comes back as the answer."""
        async with self.session().post(url, allow_redirects=False, **kwargs) as response:
            yield response

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def network_error(exc: BaseException, timeout_s: float) -> str:
    """What went wrong on the way, in words for the outbox page (never the message)."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"the server's certificate is not trusted ({exc.certificate_error})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to the gateway ({exc.os_error.strerror or exc.os_error})"
    return f"{type(exc).__name__}: {exc}"


def redirect_refused(response: aiohttp.ClientResponse) -> str | None:
    """For a redirect, why it fails the delivery (naming only the host it pointed at)."""
    if not 300 <= response.status < 400:
        return None
    host = urlsplit(response.headers.get("Location", "")).hostname
    where = f" to {host}" if host else ""
    return f"redirected ({response.status}{where}); redirects are never followed"


NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError)
