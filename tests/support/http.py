"""A small HTTPS client that behaves like a browser: cookies, forms, CSRF tokens."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from yarl import URL

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class FormClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=aiohttp.TCPConnector(ssl=False),
        )
        self.csrf = ""

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, **kwargs: Any) -> tuple[aiohttp.ClientResponse, str]:
        async with self.session.get(self.base_url + path, **kwargs) as response:
            body = await response.text()
        match = CSRF_RE.search(body)
        if match:
            self.csrf = match.group(1)
        return response, body

    async def post(
        self,
        path: str,
        data: dict[str, Any] | list[tuple[str, str]] | None = None,
        csrf: bool = True,
        **kwargs: Any,
    ) -> tuple[aiohttp.ClientResponse, str]:
        fields = list(data.items()) if isinstance(data, dict) else list(data or [])
        if csrf:
            fields.append(("csrf_token", self.csrf))
        kwargs.setdefault("allow_redirects", False)
        async with self.session.post(self.base_url + path, data=fields, **kwargs) as response:
            body = await response.text()
        match = CSRF_RE.search(body)
        if match:
            self.csrf = match.group(1)
        return response, body

    async def sign_in(self, username: str, password: str) -> aiohttp.ClientResponse:
        await self.get("/login")
        response, _ = await self.post("/login", {"username": username, "password": password})
        return response

    def set_cookie(self, name: str, value: str) -> None:
        """Replace a cookie, as someone editing their browser's cookie store would."""
        self.session.cookie_jar.clear(lambda cookie: cookie.key == name)
        self.session.cookie_jar.update_cookies({name: value}, response_url=URL(self.base_url))

    def cookie(self, name: str) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None
