"""Logging: plain text or JSON lines, each line carrying the request id.

Personal data stays out of logs by construction (handlers log route templates and
ids, never raw paths, names or numbers); the redaction filter is a second line of
defence for anything that looks like a phone number.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
# The call a log line belongs to, to correlate with metrics and the audit trail.
call_id_var: ContextVar[str | None] = ContextVar("call_id", default=None)

# A UK or international number: +44 / 0 then 9–10 more digits, spaces or dashes allowed.
PHONE_RE = re.compile(r"(?<![\w])(?:\+|00)?\d(?:[\s-]?\d){9,13}(?![\w])")
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    return PHONE_RE.sub("[redacted-number]", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        call_id = call_id_var.get()
        if call_id is not None and not hasattr(record, "call"):
            record.call = call_id
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in entry and key != "request_id":
                entry[key] = (
                    value if isinstance(value, int | float | bool | None) else redact(str(value))
                )
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def make_handler(log_format: str = "text", stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    return handler


def configure(log_format: str = "text", level: str = "INFO", stream: Any = None) -> None:
    handler = make_handler(log_format, stream)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("aioice").setLevel(logging.WARNING)
