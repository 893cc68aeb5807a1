"""Checking an offer before any peer connection is built for it, and keeping the ICE
candidates the box will check to addresses a caller may honestly have."""

import functools
import ipaddress
import re

from aioice.ice import get_host_addresses
from aiortc import sdp

from media.errors import SdpError

_MEDIA = ("audio", "video")
# Hex bytes per DTLS fingerprint algorithm (RFC 8122 names them, RFC 8827 requires sha-256).
_FINGERPRINT_BYTES = {"sha-1": 20, "sha-224": 28, "sha-256": 32, "sha-384": 48, "sha-512": 64}
_HEX_PAIR = re.compile(r"^[0-9A-Fa-f]{2}$")


def parse_offer(text: object) -> sdp.SessionDescription:
    """Parse and sanity-check a WebRTC offer, raising :class:`SdpError` on anything else.

    aiortc parses almost any text into an empty description and only fails later,
    deep in ICE or DTLS; these checks turn that into a clear message up front.
    """
    if not isinstance(text, str):
        raise SdpError(f"offer SDP must be a string, not {type(text).__name__}")
    if not text.strip():
        raise SdpError("offer SDP is empty")
    if not text.lstrip().startswith("v=0"):
        raise SdpError("offer SDP does not start with 'v=0': not a session description")
    try:
        description = sdp.SessionDescription.parse(text)
    except Exception as exc:
        raise SdpError(f"offer SDP cannot be parsed: {exc}") from exc
    media = [m for m in description.media if m.kind in _MEDIA]
    if not media:
        raise SdpError("offer SDP has no audio or video section")
    for m in media:
        where = f"{m.kind} section (mid {m.rtp.muxId!r})"
        if m.rtp.muxId is None:
            raise SdpError(f"{where} has no a=mid")
        if "SAVPF" not in (m.profile or ""):
            raise SdpError(f"{where} is not WebRTC media (profile {m.profile!r})")
        if m.ice is None or not m.ice.usernameFragment or not m.ice.password:
            raise SdpError(f"{where} has no ICE credentials (a=ice-ufrag / a=ice-pwd)")
        if m.dtls is None or not m.dtls.fingerprints:
            raise SdpError(f"{where} has no DTLS fingerprint (a=fingerprint / a=setup)")
        for fingerprint in m.dtls.fingerprints:
            _check_fingerprint(where, fingerprint.algorithm, fingerprint.value)
        if not m.rtcp_mux:
            raise SdpError(f"{where} does not use a=rtcp-mux")
        if not m.rtp.codecs:
            raise SdpError(f"{where} lists no codecs")
    bundle = next((g for g in description.group if g.semantic == "BUNDLE"), None)
    bundled = set(bundle.items) if bundle is not None else set()
    if any(m.rtp.muxId not in bundled for m in media):
        raise SdpError("offer does not bundle all media in one BUNDLE group (a=group:BUNDLE)")
    description.type = "offer"
    return description


def ice_credentials(description: sdp.SessionDescription) -> set[tuple[str, str]]:
    """The ICE username fragments and passwords an offer uses; a change means ICE restart."""
    return {
        (m.ice.usernameFragment, m.ice.password)
        for m in description.media
        if m.kind in _MEDIA and m.ice is not None and m.ice.usernameFragment and m.ice.password
    }


def sent_kinds(description: sdp.SessionDescription) -> set[str]:
    """The kinds of media the offerer will send (a section of that kind that is
    ``sendrecv`` or ``sendonly``): a phone with no microphone offers audio receive-only."""
    return {
        m.kind
        for m in description.media
        if m.kind in _MEDIA and (m.direction or "sendrecv") in ("sendrecv", "sendonly")
    }


def fingerprints(description: sdp.SessionDescription) -> set[str]:
    """The DTLS certificate fingerprints an offer carries."""
    return {
        f"{f.algorithm} {f.value}".lower()
        for m in description.media
        if m.dtls is not None
        for f in m.dtls.fingerprints
    }


def _check_fingerprint(where: str, algorithm: str, value: str) -> None:
    """A fingerprint must be the named hash's length in colon-separated hex pairs:
    anything else can never match a certificate, and the call would fail later, silently."""
    size = _FINGERPRINT_BYTES.get(algorithm.lower())
    if size is None:
        raise SdpError(f"{where} has a DTLS fingerprint of unknown algorithm {algorithm[:20]!r}")
    pairs = value.split(":")
    if len(pairs) != size or not all(_HEX_PAIR.match(p) for p in pairs):
        raise SdpError(f"{where} has a DTLS fingerprint that is not a {algorithm} digest")


@functools.cache
def own_addresses() -> frozenset[str]:
    """This machine's interface addresses (read once: the box's addresses are fixed)."""
    return frozenset(get_host_addresses(use_ipv4=True, use_ipv6=True))


def candidate_allowed(address: str, allow_loopback: bool, own: frozenset[str]) -> bool:
    """Whether the box should send ICE checks to ``address``: never a link-local (the
    cloud metadata service at 169.254.169.254 among them), multicast, unspecified or
    reserved address, nor the box itself, nor loopback unless the setting allows it.
    A hostname (an mDNS ``.local`` name) is left to aiortc. ``allow_loopback`` is the
    single-host setting (the browser on the box itself): it lets the box's own
    addresses through too."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if ip.is_loopback:
        return allow_loopback
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return False
    return allow_loopback or address not in own


def without_unsafe_candidates(
    offer_sdp: str, allow_loopback: bool, own: frozenset[str] | None = None
) -> str:
    """The offer with every ``a=candidate`` line ``candidate_allowed`` refuses removed."""
    own = own_addresses() if own is None else own
    kept = []
    for line in offer_sdp.splitlines(keepends=True):
        if line.startswith("a=candidate:"):
            fields = line.split()
            if len(fields) < 6 or not candidate_allowed(fields[4], allow_loopback, own):
                continue
        kept.append(line)
    return "".join(kept)
