"""The one metrics module: every Prometheus series the appliance exports is defined here.

Labels come only from small fixed sets (methods, route templates, status codes),
never from a path, a person or an id.
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
for _result in ("ok", "wrong", "locked"):
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
):
    SIGNALLING_ERRORS.labels(_code)
for _state in ("ended", "expired", "failed", "cancelled"):
    CALLS_ENDED.labels(_state)
for _result in ("started", "failed"):
    RECORDINGS.labels(_result)


def observe_admitted(call: Call) -> None:
    if call.waiting_at is not None and call.connected_at is not None:
        CALL_ADMIT_WAIT.observe((call.connected_at - call.waiting_at).total_seconds())
