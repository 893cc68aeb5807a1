"""Exceptions the media plane raises to the appliance.

Each one subclasses the builtin a caller would naturally catch, so code that only
knows Python's exceptions still does the right thing.
"""


class MediaError(Exception):
    """Base of every error raised by :mod:`media`."""


class SdpError(MediaError, ValueError):
    """The offer is not a usable WebRTC session description.

    Raised before anything in the room changes, so the room and its other legs
    carry on untouched.
    """


class NoVideoError(MediaError, LookupError):
    """The leg has sent no decodable video yet, so there is nothing to snapshot."""


class UnknownLegError(MediaError, KeyError):
    """No leg with that id is in the room."""


class LegExistsError(MediaError, ValueError):
    """A leg with that id is already in the room; use ``renegotiate`` instead."""


class RecordingError(MediaError, RuntimeError):
    """Recording could not start or stop as asked."""


class RoomClosedError(MediaError, RuntimeError):
    """The room was closed; nothing more can join it."""
