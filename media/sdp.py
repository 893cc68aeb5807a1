"""Checking an offer before any peer connection is built for it."""

from aiortc import sdp

from media.errors import SdpError

_MEDIA = ("audio", "video")


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


def fingerprints(description: sdp.SessionDescription) -> set[str]:
    """The DTLS certificate fingerprints an offer carries."""
    return {
        f"{f.algorithm} {f.value}".lower()
        for m in description.media
        if m.dtls is not None
        for f in m.dtls.fingerprints
    }
