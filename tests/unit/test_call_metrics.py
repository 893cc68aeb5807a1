"""Guests, observers and viewers per call, and a caller's wait by the notification raised:
the series exist from the first scrape, count what the hub holds, and say which
notification a caller's wait belongs to."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY

from appliance import metrics
from appliance.live.participants import CALLER, HANDLER, LiveCall, Participant
from appliance.live.sampler import Sampler
from appliance.models import Call, utcnow


def _value(name: str, **labels: str) -> float:
    found = REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


def _on(live: LiveCall, key: str, role: str) -> None:
    live.participants[key] = Participant(role, None, "")  # type: ignore[arg-type]


def test_every_role_and_notification_is_a_series_from_the_start() -> None:
    for role in ("guest", "observer", "viewer"):
        assert REGISTRY.get_sample_value("evr_call_attendees", {"role": role}) is not None
        assert (
            REGISTRY.get_sample_value("evr_call_attendees_per_call_count", {"role": role})
            is not None
        )
    for notification in ("desktop", "sound", "none"):
        labels = {"notification": notification}
        assert REGISTRY.get_sample_value("evr_call_answer_wait_seconds_count", labels) is not None


def test_attendees_are_counted_now_and_per_call_when_the_call_leaves() -> None:
    """Tried: one admitted call with two guests (one of whom left and came back under the
    same leg) and one call nobody admitted with a guest's socket; then both calls leave."""
    calls: dict[str, LiveCall] = {}
    sampler = Sampler(None, None, calls, None)  # type: ignore[arg-type]
    admitted, unadmitted = LiveCall("a"), LiveCall("b")
    admitted.admitted_at = 1.0
    for key, role in ((CALLER, CALLER), (HANDLER, HANDLER), ("guest-1", "guest")):
        _on(admitted, key, role)
    _on(unadmitted, "guest-9", "guest")
    calls.update(a=admitted, b=unadmitted)
    per_call_before = _value("evr_call_attendees_per_call_sum", role="guest")
    observations_before = _value("evr_call_attendees_per_call_count", role="guest")

    sampler.count_attendees()
    assert _value("evr_call_attendees", role="guest") == 2
    assert _value("evr_call_attendees", role="observer") == 0
    del admitted.participants["guest-1"]
    _on(admitted, "guest-2", "guest")
    sampler.count_attendees()
    _on(admitted, "guest-1", "guest")  # back again: still one person
    sampler.count_attendees()
    assert _value("evr_call_attendees", role="guest") == 3

    calls.clear()
    sampler.count_attendees()
    assert _value("evr_call_attendees", role="guest") == 0
    # Only the admitted call is observed: two guests, no observers or viewers.
    assert _value("evr_call_attendees_per_call_count", role="guest") == observations_before + 1
    assert _value("evr_call_attendees_per_call_sum", role="guest") == per_call_before + 2


def test_a_callers_wait_is_filed_under_the_notification_raised() -> None:
    waited = utcnow() - timedelta(seconds=42)
    call = Call(incident_id=1, invite_id=1, public_id="x", waiting_at=waited)
    call.connected_at = waited + timedelta(seconds=42)
    before = {
        n: _value("evr_call_answer_wait_seconds_sum", notification=n) for n in metrics.NOTIFICATIONS
    }
    metrics.observe_admitted(call, "desktop")
    metrics.observe_admitted(call)
    metrics.observe_admitted(call, "made-up")  # an unknown word files under none
    after = {
        n: _value("evr_call_answer_wait_seconds_sum", notification=n) for n in metrics.NOTIFICATIONS
    }
    assert after["desktop"] - before["desktop"] == 42
    assert after["sound"] == before["sound"]
    assert after["none"] - before["none"] == 84
