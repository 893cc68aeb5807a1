"""The one metrics module: every Prometheus series the appliance exports is defined here.

Labels come only from small fixed sets (methods, route templates, status codes),
never from a path, a person or an id.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Histogram

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
