"""The Content-Security-Policy names the signalling origin, and a Host header cannot add to it."""

from __future__ import annotations

import pytest

from appliance.web.middleware import content_security_policy


def _connect_sources(csp: str) -> list[str]:
    connect = [d for d in csp.split("; ") if d.startswith("connect-src ")]
    assert len(connect) == 1, csp
    return connect[0].split()[1:]


def test_connect_src_names_the_public_wss_origin_with_its_port() -> None:
    """WebKit before 2022 refuses wss://same-host under connect-src 'self' alone."""
    csp = content_security_policy(
        "https://evr.example.police.uk:8443/evr", "evr.example.police.uk:8443"
    )
    assert _connect_sources(csp) == ["'self'", "wss://evr.example.police.uk:8443"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp


def test_the_host_a_handler_reached_is_named_too() -> None:
    csp = content_security_policy("https://evr.example", "evr-lan.force.internal:8443")
    assert _connect_sources(csp) == [
        "'self'",
        "wss://evr.example",
        "wss://evr-lan.force.internal:8443",
    ]
    assert _connect_sources(content_security_policy("https://evr.example", "[::1]:8443"))[-1] == (
        "wss://[::1]:8443"
    )


@pytest.mark.parametrize(
    "host",
    ["evil.example; script-src *", "a b", "evil.example/x", "evil.example:8443 *", "'unsafe-eval'"],
)
def test_a_hostile_host_header_adds_no_source(host: str) -> None:
    csp = content_security_policy("https://evr.example", host)
    assert _connect_sources(csp) == ["'self'", "wss://evr.example"]
    assert csp.count(";") == content_security_policy("https://evr.example", "").count(";")
