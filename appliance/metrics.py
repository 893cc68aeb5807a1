"""The one metrics module: every Prometheus series the appliance exports is defined here.

Names follow Prometheus practice: one ``evr_`` prefix, base units (seconds, bytes,
ratios 0–1), counters exported with ``_total``. Labels come only from small fixed
sets (methods, route templates, status codes, roles, directions, channels), never
from a path, a person, a phone number or an id. Every labelled series is created at
import, so a rate over it exists from the first scrape.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from appliance.models import Call

HTTP_REQUESTS = Counter(
    "evr_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
EVENT_LOOP_LAG = Histogram(
    "evr_event_loop_lag_seconds",
    "How late the web process's event loop ran a quarter-second timer: every page and "
    "every call's signalling waits that long.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
EVENT_LOOP_STALLS = Counter(
    "evr_event_loop_stalls",
    "Times the event loop did not turn for over a second (each logged with where it stood).",
    registry=REGISTRY,
)
HTTP_REQUEST_DURATION = Histogram(
    "evr_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
SIGN_INS = Counter(
    "evr_sign_ins",
    "Sign-in attempts by result.",
    ["result"],
    registry=REGISTRY,
)
for _result in ("ok", "wrong", "locked", "throttled", "refused"):
    SIGN_INS.labels(_result)

SIGNALLING_CONNECTIONS = Gauge(
    "evr_signalling_connections",
    "Open signalling WebSockets, by participant role.",
    ["role"],
    registry=REGISTRY,
)
SIGNALLING_ERRORS = Counter(
    "evr_signalling_errors",
    "Signalling messages answered with an error, by error code.",
    ["code"],
    registry=REGISTRY,
)
CALLS_ENDED = Counter(
    "evr_calls_ended",
    "Calls that reached a final state, by that state.",
    ["state"],
    registry=REGISTRY,
)
CALL_ADMIT_WAIT = Histogram(
    "evr_call_admit_wait_seconds",
    "Time a caller waited between joining and being admitted by a handler.",
    buckets=(5, 15, 30, 60, 120, 180, 300, 600, 1800),
    registry=REGISTRY,
)
ICE_FAILURES = Counter(
    "evr_ice_failures",
    "Call legs whose ICE connection failed.",
    registry=REGISTRY,
)
RECORDINGS = Counter(
    "evr_recordings",
    "Recordings by what happened: started or failed.",
    ["result"],
    registry=REGISTRY,
)
RECORDING_BYTES = Counter(
    "evr_recording_bytes",
    "Bytes of finished recordings written.",
    registry=REGISTRY,
)
for _role in ("caller", "handler"):
    SIGNALLING_CONNECTIONS.labels(_role)
for _code in (
    "too_large",
    "bad_json",
    "bad_message",
    "unknown_type",
    "invalid",
    "bad_sdp",
    "not_allowed",
    "rate_limited",
    "chat_full",
    "flooding",
):
    SIGNALLING_ERRORS.labels(_code)
for _state in ("ended", "expired", "failed", "cancelled"):
    CALLS_ENDED.labels(_state)
for _result in ("started", "failed"):
    RECORDINGS.labels(_result)
RECORDINGS_INCOMPLETE = Counter(
    "evr_recordings_incomplete",
    "Recordings cut short while the call went on (a full disk, a write error): "
    "kept as far as written and marked incomplete.",
    registry=REGISTRY,
)
EVIDENCE_INTEGRITY_FAILURES = Counter(
    "evr_evidence_integrity_failures",
    "Evidence files that failed their check when read (altered, cut short or wrong key).",
    registry=REGISTRY,
)
EVIDENCE_PURGED = Counter(
    "evr_evidence_purged",
    "Evidence files deleted by the retention purge (data key destroyed, file removed).",
    registry=REGISTRY,
)

CALLS_ACTIVE = Gauge(
    "evr_calls_active",
    "Calls connected now (admitted and not ended).",
    registry=REGISTRY,
)
CALL_SETUP = Histogram(
    "evr_call_setup_seconds",
    "From the handler admitting the caller to the handler's media connection being up.",
    buckets=(0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
CALLER_FIRST_SCREEN = Histogram(
    "evr_caller_first_screen_seconds",
    "From an incident's creation to the first page its caller's link showed, by track "
    "(rvr: Rapid Video Response, standard: the rest).",
    ["track"],
    buckets=(30, 60, 120, 180, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600, 48 * 3600),
    registry=REGISTRY,
)
CALL_DURATION = Histogram(
    "evr_call_duration_seconds",
    "From admission to the end of the call.",
    buckets=(30, 60, 180, 300, 600, 900, 1200, 1800, 2700, 3600, 7200),
    registry=REGISTRY,
)
ROLES = ("caller", "handler", "guest")
DIRECTIONS = ("received", "sent")
MEDIA_PACKETS = Counter(
    "evr_media_packets",
    "RTP packets the box received from, or sent to, participants of a role.",
    ["role", "direction"],
    registry=REGISTRY,
)
MEDIA_BYTES = Counter(
    "evr_media_bytes",
    "Media bytes the box received from, or sent to, participants of a role.",
    ["role", "direction"],
    registry=REGISTRY,
)
MEDIA_LOSS = Gauge(
    "evr_media_packet_loss_ratio",
    "Share of packets lost (0–1), mean over live legs of the role: received = on the way "
    "to the box, sent = on the way to the participant.",
    ["role", "direction"],
    registry=REGISTRY,
)
MEDIA_JITTER = Gauge(
    "evr_media_jitter_seconds",
    "Inbound jitter at the box, mean over live legs of the role.",
    ["role"],
    registry=REGISTRY,
)
MEDIA_RTT = Gauge(
    "evr_media_round_trip_seconds",
    "Round-trip time between the box and the participants of a role, mean over live legs.",
    ["role"],
    registry=REGISTRY,
)
MEDIA_FPS = Gauge(
    "evr_media_frames_per_second",
    "Video frames per second the box receives from the role's legs and forwards unchanged "
    "to the others, mean over live legs.",
    ["role"],
    registry=REGISTRY,
)
MEDIA_HOLES_SKIPPED = Counter(
    "evr_media_video_holes_skipped",
    "Gaps in a role's video that no retransmission filled, stepped over by the box "
    "(the picture resumes at the next keyframe): loss NACK could not repair.",
    ["role"],
    registry=REGISTRY,
)
STORAGE_FREE = Gauge(
    "evr_storage_free_bytes",
    "Free bytes on the file system holding the data dir.",
    registry=REGISTRY,
)
CHANNELS = ("link", "sms", "email")
INVITES_SENT = Counter(
    "evr_invites_sent",
    "Invites sent to callers, by channel (link: shown to the handler to pass on).",
    ["channel"],
    registry=REGISTRY,
)
INVITES_FAILED = Counter(
    "evr_invites_failed",
    "Invites that could not be delivered, by channel.",
    ["channel"],
    registry=REGISTRY,
)
QUEUE_LENGTH = Gauge(
    "evr_queue_length",
    "Callers who have joined and wait to be admitted.",
    registry=REGISTRY,
)
QUEUE_OLDEST_WAIT = Gauge(
    "evr_queue_oldest_wait_seconds",
    "How long the longest-waiting caller has waited (0 when nobody waits).",
    registry=REGISTRY,
)
QUEUE_BREACHES = Counter(
    "evr_queue_target_breaches",
    "Callers who waited longer than the admission target (counted once per call).",
    registry=REGISTRY,
)
QUEUE_TARGET = Gauge(
    "evr_queue_target_seconds",
    "The admission target a waiting caller is measured against.",
    registry=REGISTRY,
)
MEDIA_WORKER_RESTARTS = Counter(
    "evr_media_worker_restarts",
    "Media worker processes that died and were replaced (their calls failed).",
    registry=REGISTRY,
)
CAD_DELIVERIES = Counter(
    "evr_cad_deliveries",
    "Attempts to send an event to the force's CAD, by result (delivered, retry, failed).",
    ["result"],
    registry=REGISTRY,
)
GUESTS_JOINED = Counter(
    "evr_guests_joined",
    "Guests (interpreter, second officer, supervisor) who joined a call, by their role.",
    ["role"],
    registry=REGISTRY,
)
# Who else is on a call besides the caller and the handler: guests (interpreter, second
# officer), supervisors observing (receive only) and responders on a view-only link. The
# observer and viewer roles are named here before the hub has them: until it does, their
# series stay 0.
ATTENDEE_ROLES = ("guest", "observer", "viewer")
CALL_ATTENDEES = Gauge(
    "evr_call_attendees",
    "Guests, observers and viewers on live calls now, by role (every live call together).",
    ["role"],
    registry=REGISTRY,
)
CALL_ATTENDEES_PER_CALL = Histogram(
    "evr_call_attendees_per_call",
    "Guests, observers and viewers who were on a call, by role: one observation per role "
    "when an admitted call leaves the hub (each person once, however often they rejoined).",
    ["role"],
    buckets=(0, 1, 2, 3, 4, 6, 10),
    registry=REGISTRY,
)
# How a waiting caller was announced to staff (static/js/staff/waiting.js tells the box):
# a desktop notification shown, the chime alone (no permission for notifications), or
# nothing (no staff page open that would alert for this caller).
NOTIFICATIONS = ("desktop", "sound", "none")
CALL_ANSWER_WAIT = Histogram(
    "evr_call_answer_wait_seconds",
    "Time a caller waited between joining and a handler answering, by the strongest "
    "notification a staff page raised for them while they waited.",
    ["notification"],
    buckets=(5, 15, 30, 60, 120, 180, 300, 600, 1800),
    registry=REGISTRY,
)
TLS_EXPIRY = Gauge(
    "evr_tls_certificate_expiry_timestamp_seconds",
    "When the served TLS certificate stops being valid (Unix time).",
    registry=REGISTRY,
)
for _role in ROLES:
    MEDIA_JITTER.labels(_role)
    MEDIA_RTT.labels(_role)
    MEDIA_FPS.labels(_role)
    MEDIA_HOLES_SKIPPED.labels(_role)
    for _direction in DIRECTIONS:
        MEDIA_PACKETS.labels(_role, _direction)
        MEDIA_BYTES.labels(_role, _direction)
        MEDIA_LOSS.labels(_role, _direction)
for _channel in CHANNELS:
    INVITES_SENT.labels(_channel)
    INVITES_FAILED.labels(_channel)
for _result in ("delivered", "retry", "failed"):
    CAD_DELIVERIES.labels(_result)
for _role in ATTENDEE_ROLES:
    CALL_ATTENDEES.labels(_role)
    CALL_ATTENDEES_PER_CALL.labels(_role)
for _notification in NOTIFICATIONS:
    CALL_ANSWER_WAIT.labels(_notification)


def observe_admitted(call: Call, notification: str = "none") -> None:
    """The caller's wait, overall and by how they were announced (``NOTIFICATIONS``)."""
    if call.waiting_at is not None and call.connected_at is not None:
        waited = (call.connected_at - call.waiting_at).total_seconds()
        CALL_ADMIT_WAIT.observe(waited)
        CALL_ANSWER_WAIT.labels(notification if notification in NOTIFICATIONS else "none").observe(
            waited
        )
