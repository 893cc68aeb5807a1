"""The call's media: STUN and TURN, loopback for tests, abandoned calls, guests and
observers."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

from appliance import i18n


class CallsSettings(BaseModel):
    stun_urls: list[str] = Field(
        [],
        description='STUN servers for both legs, e.g. ["stun:evr.example:3478"]. '
        "Never a public default.",
    )
    turn_urls: list[str] = Field(
        [],
        description="TURN servers (coturn) for callers on mobile networks and behind "
        'firewalls, e.g. ["turn:evr.example:3478?transport=udp", '
        '"turns:evr.example:443?transport=tcp"]; the box\'s own legs use the first.',
    )
    turn_secret: SecretStr | None = Field(
        None,
        description="coturn's static-auth-secret (use-auth-secret): credentials are "
        "minted per call from it and expire.",
    )
    turn_ttl_seconds: int = Field(
        3600 * 4, ge=60, le=86400, description="How long a call's TURN credentials last."
    )
    media_allow_loopback: bool = Field(
        False,
        description="Offer 127.0.0.1 ICE candidates (only for a box, or a test, "
        "that reaches the browser over loopback).",
    )
    call_abandoned_seconds: float = Field(
        300,
        gt=0,
        le=86400,
        description="A connected call that both the caller and the handler have left ends "
        "(reason abandoned) after this long; either can rejoin before then.",
    )
    caller_rejoin_minutes: float = Field(
        5,
        ge=0,
        le=60,
        description="After the caller ends a call themselves, the same link lets them "
        "rejoin for this long (a new call that waits for the officer); 0 turns it off. "
        "Never on RVR calls; the officer's End or a revoke closes it at once.",
    )
    caller_language_default: str = Field(
        "en",
        description="The language a caller's pages, SMS and statement are written in "
        "unless the handler picks another when sending the link: `en` (English) or `cy` "
        "(Cymraeg). The caller can switch on the page.",
    )
    chat_per_minute: int = Field(
        30,
        ge=1,
        le=10_000,
        description="Chat messages one socket may send in a minute; more are answered "
        "`rate_limited` and not stored.",
    )
    socket_messages_per_minute: int = Field(
        120,
        ge=30,
        le=100_000,
        description="Messages of any kind one participant's sockets may send in a minute "
        "(a reconnect does not reset it); past that the socket is closed (1008).",
    )
    chat_max_per_call: int = Field(
        1000,
        ge=10,
        le=1_000_000,
        description="Chat messages a call may hold; more are answered `chat_full`.",
    )
    console_chat_shown: int = Field(
        200,
        ge=10,
        le=10_000,
        description="Latest chat messages the console page renders; earlier ones behind a link.",
    )
    chat_presets: list[str] = Field(
        [
            "Can you show me where you are?",
            "Are you safe to talk?",
            "Please stay on the line.",
            "Can you turn the camera towards it?",
            "Officers are on their way.",
        ],
        max_length=20,
        description="Ready-made chat messages the console offers with one click "
        "(the officer can change the text before sending).",
    )
    guests_enabled: bool = Field(
        True,
        description="Whether an officer may invite a guest (interpreter, second officer, "
        "supervisor) onto a live call.",
    )
    guests_max: int = Field(
        3,
        ge=1,
        le=6,
        description="How many guests may be on one call at once (invited and not removed); "
        "every page on a call offers this many receive slots when it joins, so a guest "
        "arriving renegotiates nobody (docs/media.md). A further invite is refused.",
    )
    guests_recorded: bool = Field(
        True,
        description="Whether a recorded call (the caller agreed) also records each guest's "
        "voice, on a track of its own; the recording's audit record says whose each "
        "track is.",
    )
    observers_shown_to_caller: bool = Field(
        True,
        description="Whether the caller's page says so while a supervisor observes the "
        "call (the handler is always told). Off only if the force's policy says a "
        "caller need not be told.",
    )
    staff_refresh_seconds: float = Field(
        5,
        ge=1,
        le=60,
        description="How often staff pages ask the box what changed: the waiting count in "
        "the menu, the handler's list, the queue board (the list of waiting callers asks "
        "at most every 3 s). Every open staff screen asks once a period.",
    )
    viewers_shown_to_caller: bool = Field(
        True,
        description="Whether the caller's page names the responders watching the call by "
        "a view-only link (the handler is always told). Off only if the force's policy "
        "says a caller need not be told.",
    )

    @field_validator("caller_language_default")
    @classmethod
    def _offered_language(cls, value: str) -> str:
        if value not in i18n.OFFERED:
            raise ValueError(f"must be one of {', '.join(i18n.OFFERED)}")
        return value

    @field_validator("stun_urls", "turn_urls")
    @classmethod
    def _ice_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ValueError(f"{url!r} is not a stun:, stuns:, turn: or turns: URL")
        return value
