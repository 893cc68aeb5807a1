"""The pure parts of SMS sending: tokens, signatures, key parsing, backoff, settings."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

import jwt
import pytest

from appliance.config import SettingsError, load_settings
from appliance.notify import GovukNotifyNotifier, OutboxNotifier, WebhookNotifier, make_notifier
from appliance.notify.base import SmsMessage, parse_retry_after
from appliance.notify.govuk_notify import ApiKeyError, make_jwt, split_api_key
from appliance.notify.webhook import encode, signature, verify
from appliance.services.outbox.messages import RetryPolicy, invite_text

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"evr_live-{SERVICE_ID}-{SECRET}"
TEMPLATE_ID = "f33517ff-2a88-4f6e-b855-c550268ce08a"
HOOK_SECRET = "s" * 40


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("EVR_"):
            monkeypatch.delenv(name)


def test_the_api_key_splits_into_service_id_and_secret() -> None:
    assert split_api_key(API_KEY) == (SERVICE_ID, SECRET)
    # A key name may itself contain dashes.
    assert split_api_key(f"my-key-name-{SERVICE_ID}-{SECRET}") == (SERVICE_ID, SECRET)
    with pytest.raises(ApiKeyError):
        split_api_key("not-a-key")


def test_our_jwt_is_what_pyjwt_accepts_and_makes() -> None:
    now = int(time.time())
    token = make_jwt(SERVICE_ID, SECRET, now)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims == {"iss": SERVICE_ID, "iat": now}
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    # Byte for byte what PyJWT makes from the same claims.
    assert token == jwt.encode(
        {"iss": SERVICE_ID, "iat": now}, SECRET, algorithm="HS256", headers={"typ": "JWT"}
    )
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, str(uuid.uuid4()), algorithms=["HS256"])


def test_the_webhook_signature_covers_timestamp_and_exact_bytes() -> None:
    message = SmsMessage("+447700900123", "Dorset: your link é https://x/y", "ref-1")
    body = encode(message)
    timestamp = str(int(time.time()))
    expected = hmac.new(
        HOOK_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert signature(HOOK_SECRET, timestamp, body) == f"sha256={expected}"
    assert verify(HOOK_SECRET, timestamp, body, f"sha256={expected}")
    assert not verify(HOOK_SECRET, timestamp, body + b" ", f"sha256={expected}")
    assert not verify("t" * 40, timestamp, body, f"sha256={expected}")
    # A replay after the window fails even with a good signature.
    assert not verify(HOOK_SECRET, timestamp, body, f"sha256={expected}", now=time.time() + 301)


def test_backoff_doubles_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=30, cap_seconds=3600)
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert policy.delay(20).total_seconds() == 3600
    assert policy.delay(1, retry_after=90).total_seconds() == 90
    assert policy.delay(3, retry_after=5).total_seconds() == 120
    assert policy.delay(1, retry_after=10**6).total_seconds() == 3600
    assert parse_retry_after("17") == 17 and parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_the_invite_wording_is_filled_in() -> None:
    settings = load_settings(force_name="Wessex Constabulary")
    text = invite_text(settings, "https://evr.example/j/abc")
    assert (
        text
        == "Wessex Constabulary: here is the link for your video call: https://evr.example/j/abc"
    )
    custom = load_settings(sms_invite_template="Your video call link: {link}")
    assert invite_text(custom, "https://x/y") == "Your video call link: https://x/y"


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("Your video call: https://evr", "must contain {link}"),
        ("{force_name} {link} {name}", "only use the placeholders"),
        ("Police video call: {link}", "must stay neutral"),
        ("About the domestic incident: {link}", "must stay neutral"),
        ("Your link: {link} {", "not a valid template"),
    ],
)
def test_unsafe_or_broken_wording_stops_start_up(template: str, complaint: str) -> None:
    with pytest.raises(SettingsError, match="sms_invite_template") as caught:
        load_settings(sms_invite_template=template)
    assert complaint in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"notify_adapter": "govuk_notify"}, "notify_api_key and notify_template_id"),
        (
            {"notify_adapter": "govuk_notify", "notify_api_key": API_KEY},
            "needs notify_template_id",
        ),
        ({"notify_adapter": "webhook"}, "notify_webhook_url and notify_webhook_secret"),
        (
            {"notify_adapter": "webhook", "notify_webhook_url": "https://gw.example/sms"},
            "needs notify_webhook_secret",
        ),
    ],
)
def test_an_adapter_without_its_settings_stops_start_up(
    overrides: dict[str, str], missing: str
) -> None:
    with pytest.raises(SettingsError, match=missing):
        load_settings(**overrides)


def test_bad_notify_values_are_named_and_secrets_never_echoed() -> None:
    with pytest.raises(SettingsError, match="notify_api_key") as caught:
        load_settings(notify_api_key="live-key-that-is-wrong")
    assert "live-key-that-is-wrong" not in str(caught.value)
    with pytest.raises(SettingsError, match="notify_webhook_secret") as caught:
        load_settings(notify_webhook_secret="too-short-secret")
    assert "too-short-secret" not in str(caught.value)
    with pytest.raises(SettingsError, match="notify_template_id"):
        load_settings(notify_template_id="welcome-sms")
    with pytest.raises(SettingsError, match="notify_webhook_url"):
        load_settings(notify_webhook_url="gw.example/sms")


def test_make_notifier_picks_the_adapter_the_settings_name() -> None:
    assert isinstance(make_notifier(load_settings()), OutboxNotifier)
    notify = make_notifier(
        load_settings(
            notify_adapter="govuk_notify",
            notify_api_key=API_KEY,
            notify_template_id=TEMPLATE_ID,
            notify_base_url="http://127.0.0.1:9/",
            notify_timeout_seconds=3,
        )
    )
    assert isinstance(notify, GovukNotifyNotifier)
    assert notify.url == "http://127.0.0.1:9/v2/notifications/sms"
    assert notify.service_id == SERVICE_ID and notify.http.timeout_s == 3
    hook = make_notifier(
        load_settings(
            notify_adapter="webhook",
            notify_webhook_url="https://gw.example/sms",
            notify_webhook_secret=HOOK_SECRET,
        )
    )
    assert isinstance(hook, WebhookNotifier) and hook.url == "https://gw.example/sms"
