"""Structured logs: one line per event, as ``key=value`` pairs or JSON (LOG_FORMAT).

Every line carries the request id, the identity hash and the conversation SID of the
work it belongs to (context variables, set where they become known). Fields that could
hold a secret are redacted, and message bodies are replaced by their length unless
LOG_MESSAGE_BODIES=1, in the formatter, so no call site can leak one by mistake.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
identity: ContextVar[str | None] = ContextVar("identity", default=None)
conversation_sid: ContextVar[str | None] = ContextVar("conversation_sid", default=None)

#: Field names whose values never reach a log line.
_SECRET = re.compile(r"token|secret|password|authorization|api_?key|signature|verifier", re.I)
_BODY_FIELDS = frozenset({"body", "msg", "context", "text"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_BARE = re.compile(r"[^\s\"=]+")
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def mask(value: str) -> str:
    """A SID or key shown without giving it away: ``AC12…cdef`` (short values: ``ab…``)."""
    if len(value) >= 16:
        return f"{value[:4]}…{value[-4:]}"
    return f"{value[:2]}…" if value else "(empty)"


def new_request_id(offered: str | None = None) -> str:
    """The caller's X-Request-Id when it is a sane token, else a fresh one."""
    if offered and _REQUEST_ID.fullmatch(offered):
        return offered
    return secrets.token_hex(8)


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event: ``name`` is the message, ``fields`` become key=value pairs."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})


class StructuredFormatter(logging.Formatter):
    """One line per record: ``key=value`` pairs, or a JSON object."""

    def __init__(self, *, json_lines: bool, bodies: bool) -> None:
        super().__init__()
        self._json = json_lines
        self._bodies = bodies

    def _fields(self, record: logging.LogRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in (
            ("request_id", request_id.get()),
            ("identity", identity.get()),
            ("conversation", conversation_sid.get()),
        ):
            if value:
                out[key] = value
        fields: dict[str, Any] = dict(getattr(record, "fields", None) or {})
        # Anything a library passed through ``extra`` is kept too.
        fields.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        fields.pop("fields", None)
        for key, value in fields.items():
            out[key] = self._clean(key, value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return out

    def _clean(self, key: str, value: Any) -> Any:
        if _SECRET.search(key):
            return "[redacted]"
        if key in _BODY_FIELDS and isinstance(value, str) and not self._bodies:
            return f"[{len(value)} chars]"
        return value

    def format(self, record: logging.LogRecord) -> str:
        fields = self._fields(record)
        if self._json:
            return json.dumps(fields, default=str, ensure_ascii=False)
        return " ".join(f"{key}={_kv(value)}" for key, value in fields.items())


def _kv(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def ours_or_info(record: logging.LogRecord) -> bool:
    """The bridge's own records at any level; other libraries' from INFO up.

    Libraries' debug lines carry what the redaction cannot see: aiosqlite's hold each
    statement's parameters (message bodies, emails, PKCE verifiers, the stored
    BRIDGE_SECRET), the MCP SDK's each message received. LOG_LEVEL=DEBUG must not leak them.
    """
    return record.levelno >= logging.INFO or record.name.split(".", 1)[0] == "bridge"


def configure(fmt: str = "text", level: str = "INFO", *, bodies: bool = False) -> None:
    """Send every log record to stderr as one structured line."""
    handler = logging.StreamHandler()
    handler.setFormatter(StructuredFormatter(json_lines=fmt == "json", bodies=bodies))
    handler.addFilter(ours_or_info)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Twilio library logs each request's headers at INFO.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    # Not even built: each of its debug lines formats a statement and its parameters.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
