"""Configuration of a room: which ICE servers to use and whether loopback is allowed."""

from dataclasses import dataclass, field

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer
from aiortc.rtcicetransport import parse_stun_turn_uri


@dataclass(frozen=True)
class IceServer:
    """A STUN or TURN server, as a browser's ``RTCIceServer`` describes one.

    aiortc uses only the first STUN and the first TURN URL it can use; the rest
    are ignored (see docs/media.md).
    """

    urls: list[str]
    username: str | None = None
    credential: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.urls, str):
            raise TypeError("IceServer.urls must be a list of URLs, not one string")
        for url in self.urls:
            try:
                parse_stun_turn_uri(url)
            except ValueError as exc:
                raise ValueError(f"bad ICE server URL {url!r}: {exc}") from exc


@dataclass(frozen=True)
class RoomConfig:
    """How a room's peer connections are built.

    ``ice_servers`` may be empty: the box then offers only its own host candidates,
    never aiortc's default public STUN server. ``allow_loopback`` adds 127.0.0.1
    host candidates, which aioice drops by default; tests and single-host network
    namespaces need it. ``hole_wait_s`` is how long a video receiver waits for a
    missing packet (a NACK's round trip and the retransmission) before stepping over it
    and asking for a keyframe (``passthrough.HoleSkippingJitterBuffer``).
    """

    ice_servers: list[IceServer] = field(default_factory=list)
    allow_loopback: bool = False
    snapshot_max_frames: int = 300
    disconnect_after_s: float = 3.0
    hole_wait_s: float = 0.3

    def rtc_configuration(self) -> RTCConfiguration:
        """Always an explicit configuration, so aiortc never falls back to Google STUN.

        Max-bundle: every browser bundles, and with aiortc's default (balanced) a
        second transceiver of one kind created before the offer is applied is left
        on a transport that bundling then stops.
        """
        return RTCConfiguration(
            iceServers=[
                RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
                for s in self.ice_servers
            ],
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
        )
