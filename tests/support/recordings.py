"""Reading recordings back with PyAV, the way the evidence checks will."""

from dataclasses import dataclass

import av


@dataclass
class Decoded:
    video_codecs: list[str]
    audio_codecs: list[str]
    video_frames: int
    audio_frames: int
    video_size: tuple[int, int] | None
    first_video_keyframe: bool
    last_video_s: float
    last_audio_s: float
    first_s: float


def decode_file(path: str) -> Decoded:
    """Decode every frame of every stream, as a player would."""
    with av.open(path) as container:
        video_codecs = [s.codec_context.name for s in container.streams.video]
        audio_codecs = [s.codec_context.name for s in container.streams.audio]
    first_key = False
    with av.open(path) as container:
        for packet in container.demux(video=0) if video_codecs else []:
            first_key = bool(packet.is_keyframe)
            break
    video_frames = audio_frames = 0
    last_video = last_audio = 0.0
    first = float("inf")
    size = None
    with av.open(path) as container:
        for frame in container.decode(*container.streams):
            t = float(frame.time or 0.0)
            first = min(first, t)
            if isinstance(frame, av.VideoFrame):
                video_frames += 1
                last_video = max(last_video, t)
                size = (frame.width, frame.height)
            else:
                audio_frames += 1
                last_audio = max(last_audio, t)
    return Decoded(
        video_codecs=video_codecs,
        audio_codecs=audio_codecs,
        video_frames=video_frames,
        audio_frames=audio_frames,
        video_size=size,
        first_video_keyframe=first_key,
        last_video_s=last_video,
        last_audio_s=last_audio,
        first_s=0.0 if first == float("inf") else first,
    )
