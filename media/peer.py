"""One leg's peer connection: answering its offers and wiring its media to the relay."""

import logging
from collections.abc import Callable

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError

from media import codecs, passthrough
from media.config import RoomConfig
from media.errors import SdpError
from media.relay import EncodedFrame, ForwardTrack, Source

logger = logging.getLogger(__name__)

_RECEIVING = ("sendrecv", "recvonly")
_NEGOTIATION_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OperationError,
    InvalidStateError,
    InvalidAccessError,
    InternalError,
)


class Peer:
    """An ``RTCPeerConnection`` for one leg, with a :class:`Source` per incoming track
    and a :class:`ForwardTrack` per outgoing one, in m-line order.

    Transceivers are created before the offer is applied, with codec preferences
    set, because aiortc settles a transceiver's codecs in ``setRemoteDescription``.
    Every receiver is tapped before the connection can start it, so no incoming
    frame ever reaches aiortc's decoder.
    """

    def __init__(
        self,
        leg_id: str,
        config: RoomConfig,
        on_state: Callable[["Peer", str], None],
        on_first_frame: Callable[[Source, EncodedFrame], None],
    ) -> None:
        self.leg_id = leg_id
        self.config = config
        self.pc = RTCPeerConnection(configuration=config.rtc_configuration())
        self.sources: list[Source] = []
        self.outputs: list[ForwardTrack] = []
        self.remote: aiortc_sdp.SessionDescription | None = None
        self._on_state = on_state
        self._on_first_frame = on_first_frame
        self._closed = False
        self.pc.on("connectionstatechange", self._state_changed)

    @property
    def state(self) -> str:
        return self.pc.connectionState

    async def answer(
        self, offer: aiortc_sdp.SessionDescription, offer_sdp: str, video_first: str | None
    ) -> str:
        """Apply ``offer`` and return the full answer SDP (ICE gathered, no trickle)."""
        known = {t.mid for t in self.pc.getTransceivers() if t.mid is not None}
        for media in offer.media:
            if media.kind not in ("audio", "video"):
                continue
            client_receives = media.direction in _RECEIVING
            if media.rtp.muxId in known:
                self._ensure_output(media.rtp.muxId, media.kind, client_receives)
                continue
            track = ForwardTrack(media.kind) if client_receives else None
            transceiver = self.pc.addTransceiver(
                track or media.kind, direction="sendrecv" if track else "recvonly"
            )
            first = video_first if media.kind == "video" else None
            transceiver.setCodecPreferences(codecs.preferences(media.kind, first))
            if track is not None:
                self._wire_output(transceiver, track)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            for transceiver in self.pc.getTransceivers():
                passthrough.tap_receiver(transceiver.receiver, _discard)
                if transceiver.kind == "video":
                    passthrough.skip_holes(transceiver.receiver, self.config.hole_wait_s)
                else:
                    passthrough.pass_audio(transceiver.receiver)
            if self.config.allow_loopback:
                passthrough.gather_loopback(self.pc)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except _NEGOTIATION_ERRORS as exc:
            raise SdpError(f"offer cannot be answered: {exc}") from exc
        self.remote = offer
        self._wire_sources()
        for track in self.outputs:
            sending = self._transceiver_of(track)
            if sending is not None:
                track.target_codec = passthrough.negotiated_codec(sending)
        return self.pc.localDescription.sdp

    def video_codec(self) -> str | None:
        """The video codec this leg negotiated (what it sends, else what it receives)."""
        for source in self.sources:
            if source.kind == "video":
                transceiver = self._transceiver_of_receiver(source)
                codec = passthrough.negotiated_codec(transceiver) if transceiver else None
                if codec is not None:
                    return codecs.mime(codec)
        for track in self.outputs:
            if track.kind == "video" and track.target_codec is not None:
                return codecs.mime(track.target_codec)
        return None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.pc.remove_all_listeners()
        for source in self.sources:
            source.close()
        for track in self.outputs:
            track.attach(None)
        await self.pc.close()

    def _ensure_output(self, mid: str, kind: str, client_receives: bool) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.mid == mid)
        if client_receives and transceiver.sender.track is None:
            track = ForwardTrack(kind)
            transceiver.sender.replaceTrack(track)
            transceiver.direction = "sendrecv"
            self._wire_output(transceiver, track)

    def _wire_output(self, transceiver: RTCRtpTransceiver, track: ForwardTrack) -> None:
        self.outputs.append(track)
        passthrough.on_keyframe_request(transceiver.sender, track.request_keyframe)

        def remb(bitrate: int) -> None:
            if track.source is not None:
                track.source.report_remb(track, bitrate)

        passthrough.on_remb(transceiver.sender, remb)

    def _wire_sources(self) -> None:
        tapped = {id(s.receiver) for s in self.sources}
        for transceiver in self.pc.getTransceivers():
            receiver = transceiver.receiver
            if transceiver.currentDirection in _RECEIVING and id(receiver) not in tapped:
                self.sources.append(
                    Source(self.leg_id, transceiver.kind, receiver, self._on_first_frame)
                )

    def mid_of(self, track: ForwardTrack) -> str | None:
        """The m-line ``mid`` an outgoing track is sent on (None before negotiation)."""
        transceiver = self._transceiver_of(track)
        return transceiver.mid if transceiver is not None else None

    def _transceiver_of(self, track: ForwardTrack) -> RTCRtpTransceiver | None:
        return next((t for t in self.pc.getTransceivers() if t.sender.track is track), None)

    def _transceiver_of_receiver(self, source: Source) -> RTCRtpTransceiver | None:
        return next((t for t in self.pc.getTransceivers() if t.receiver is source.receiver), None)

    def _state_changed(self) -> None:
        self._on_state(self, self.pc.connectionState)


def _discard(codec: object, frame: object) -> None:
    """Handler of a tapped receiver that has no source yet: drop, never decode."""
