"""Debian's WebKitGTK (the engine of Safari's family) driven over W3C WebDriver.

`WebKitWebDriver` (package webkit2gtk-driver) starts WebKitGTK's MiniBrowser on an Xvfb
display of its own (`-displayfd` picks a free one, so parallel workers never share one),
with mock camera and microphone. The protocol is spoken with plain aiohttp calls rather
than Selenium: Selenium's client blocks, and the appliance under test is the in-process
`live_server`, served by the same event loop; the handful of W3C endpoints used here
(session, url, execute, element, click) are stable and short.

WebKit refuses a certificate it cannot verify, and an HTTPS page it loads anyway is no
secure context (no camera, no WebSocket). WebKitGTK's WebDriver trusts certificates per
host (`webkitgtk:browserOptions.certificates`, webkit_web_context_allow_tls_certificate_for_host)
rather than a CA: the test's own CA issues the box's certificate (tests/support/pki.py) and
that certificate is what the browser is told to trust; the system's trust store is untouched.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.live import free_port

WEBDRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriverError(Exception):
    pass


class WebKit:
    """One WebDriver session: a MiniBrowser window."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self.http.request(method, self.base + path, json=body) as response:
            value = (await response.json())["value"]
        if response.status != 200:
            raise WebDriverError(f"{method} {path}: {value}")
        return value

    async def go(self, url: str) -> None:
        await self._call("POST", "/url", {"url": url})

    async def url(self) -> str:
        return str(await self._call("GET", "/url"))

    async def run(self, script: str, *args: Any) -> Any:
        """``script`` as a function body in the page (``return`` its value)."""
        return await self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    async def run_async(self, script: str, *args: Any) -> Any:
        """``script`` calls ``arguments[arguments.length - 1]`` with its result."""
        return await self._call("POST", "/execute/async", {"script": script, "args": list(args)})

    async def click(self, css: str) -> None:
        found = await self._call("POST", "/element", {"using": "css selector", "value": css})
        await self._call("POST", f"/element/{found[ELEMENT]}/click", {})

    async def text(self, css: str) -> str:
        """The rendered text of the first match, or "" (hidden elements render none)."""
        return str(
            await self.run(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css
            )
        )

    async def wait_for(self, script: str, timeout: float = 15.0) -> Any:
        """Polls ``script`` (a function body) until it returns something truthy."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.run(script)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"never true in {timeout} s: {script}")
            await asyncio.sleep(0.1)


def _start_xvfb(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as displayfd:
        number = displayfd.readline().strip()
    if not number:
        xvfb.kill()
        raise RuntimeError("Xvfb did not start")
    return xvfb, f":{number}"


@asynccontextmanager
async def webkit(home: Path, trusted: dict[str, Path]) -> AsyncIterator[WebKit]:
    """A WebKitGTK window over WebDriver, trusting ``trusted`` (host → certificate file).

    The sandbox is off (it needs user namespaces the suite's own namespace may not give),
    and so is the accessibility bus (no D-Bus here: GTK would wait for it ~10 s)."""
    for program in (WEBDRIVER, MINIBROWSER):
        assert Path(program).exists(), f"{program} missing: make test installs webkit2gtk-driver"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        HOME=str(home),
        XDG_RUNTIME_DIR=str(home),
        WEBKIT_DISABLE_SANDBOX_THIS_IS_DANGEROUS="1",
        NO_AT_BRIDGE="1",
        GTK_A11Y="none",
    )
    xvfb, display = _start_xvfb(env)
    env["DISPLAY"] = display
    port = free_port()
    driver = subprocess.Popen(
        [WEBDRIVER, f"--port={port}", "--host=127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    options = {
        "binary": MINIBROWSER,
        "args": [
            "--automation",
            "--enable-media-stream=true",
            "--enable-mock-capture-devices=true",
        ],
        "certificates": [
            {"host": host, "certificateFile": str(path)} for host, path in trusted.items()
        ],
    }
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            for _ in range(100):
                try:
                    async with http.get(base + "/status") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            capabilities = {
                "browserName": "MiniBrowser",
                "webkitgtk:browserOptions": options,
                "timeouts": {"script": 15_000, "pageLoad": 20_000},
            }
            async with http.post(
                base + "/session", json={"capabilities": {"alwaysMatch": capabilities}}
            ) as response:
                value = (await response.json())["value"]
                if response.status != 200:
                    raise WebDriverError(f"no session: {value}")
            session = WebKit(http, f"{base}/session/{value['sessionId']}")
            try:
                yield session
            finally:
                async with http.delete(session.base):
                    pass
    finally:
        for process in (driver, xvfb):
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
