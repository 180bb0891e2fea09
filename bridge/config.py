"""Settings: read from the environment once, validated, failing fast with the variable to fix."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

#: Credentials the embedded sandbox accepts when no real ones are configured. They only
#: ever open the local emulator, so they are safe to print and document.
SANDBOX_ACCOUNT_SID = "AC" + "0" * 32
SANDBOX_AUTH_TOKEN = "sandbox-auth-token"  # noqa: S105 - a documented, local-only value
SANDBOX_FLOW_SID = "FW" + "0" * 32

MAX_REPLY_WAIT_SECONDS = 40.0
_SID = re.compile(r"^{prefix}[0-9a-fA-F]{{32}}$")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable to fix."""


@dataclass(frozen=True)
class Settings:
    sandbox: bool
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_flow_sid: str
    twilio_api_base_url: str | None
    public_url: str
    host: str
    port: int
    database_path: Path
    bridge_secret: str | None
    reply_wait_seconds: float
    twilio_timeout_seconds: float = 10.0
    poll_interval_seconds: float = 0.5
    max_message_chars: int = 8000
    webhooks: bool = True
    reconcile_interval_seconds: float = 300.0

    @property
    def webhook_url(self) -> str:
        """Where Twilio sends conversation events (and what it signs)."""
        return f"{self.public_url}/twilio/events"

    @property
    def local_url(self) -> str:
        """Where this process can reach itself (the embedded sandbox lives here)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def twilio_base_url(self) -> str | None:
        """Base URL for the Conversations API; None means Twilio itself."""
        if self.twilio_api_base_url:
            return self.twilio_api_base_url
        if self.sandbox:
            return f"{self.local_url}/sandbox/twilio"
        return None


def _sid(env: Mapping[str, str], name: str, prefix: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set: give the {prefix}… SID from the Twilio console.")
    if not re.match(_SID.pattern.format(prefix=prefix), value):
        raise ConfigError(
            f"{name} must be '{prefix}' followed by 32 hex digits, got {value[:6]!r}…."
        )
    return value


def _bool(env: Mapping[str, str], name: str) -> bool | None:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "auto"):
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1, 0 or auto, got {raw!r}.")


def _port(env: Mapping[str, str]) -> int:
    raw = env.get("PORT", "5002").strip() or "5002"
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"PORT must be a whole number, got {raw!r}.") from None
    if not 0 < port < 65536:
        raise ConfigError(f"PORT must be between 1 and 65535, got {port}.")
    return port


def _url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{name} must be an absolute http(s) URL such as https://example.ngrok.app, "
            f"got {raw!r}."
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} must not carry a query or fragment, got {raw!r}.")
    return raw.rstrip("/")


def _database_path(env: Mapping[str, str]) -> Path:
    raw = env.get("DATABASE_URL", "").strip() or "sqlite:///data/bridge.db"
    prefix = "sqlite:///"
    if not raw.startswith(prefix) or len(raw) == len(prefix):
        raise ConfigError(
            "DATABASE_URL must look like sqlite:///data/bridge.db (relative) or "
            f"sqlite:////var/lib/bridge.db (absolute), got {raw!r}."
        )
    return Path(raw[len(prefix) :])


def _seconds(env: Mapping[str, str], name: str, default: float, maximum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}.") from None
    if not 0 < value <= maximum:
        raise ConfigError(f"{name} must be more than 0 and at most {maximum:g} seconds, got {raw}.")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Validate the environment (``os.environ`` by default) into Settings."""
    env = os.environ if env is None else env
    has_credentials = bool(env.get("TWILIO_ACCOUNT_SID") or env.get("TWILIO_AUTH_TOKEN"))
    forced = _bool(env, "SANDBOX")
    sandbox = (not has_credentials) if forced is None else forced

    if sandbox and not has_credentials:
        account_sid, auth_token = SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN
    else:
        account_sid = _sid(env, "TWILIO_ACCOUNT_SID", "AC")
        auth_token = env.get("TWILIO_AUTH_TOKEN", "").strip()
        if not auth_token:
            raise ConfigError("TWILIO_AUTH_TOKEN is not set: copy it from the Twilio console.")

    if env.get("TWILIO_FLOW_SID", "").strip():
        flow_sid = _sid(env, "TWILIO_FLOW_SID", "FW")
    elif sandbox:
        flow_sid = SANDBOX_FLOW_SID
    else:
        raise ConfigError(
            "TWILIO_FLOW_SID is not set: give the FW… SID of the Studio flow that "
            "sends conversations to Flex."
        )

    base_raw = env.get("TWILIO_API_BASE_URL", "").strip()
    base_url = _url("TWILIO_API_BASE_URL", base_raw) if base_raw else None

    host = env.get("HOST", "").strip() or "127.0.0.1"
    port = _port(env)
    public_raw = env.get("PUBLIC_URL", "").strip()
    local_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    public_url = _url("PUBLIC_URL", public_raw) if public_raw else f"http://{local_host}:{port}"

    secret = env.get("BRIDGE_SECRET", "").strip() or None
    if secret is None and not sandbox:
        raise ConfigError(
            "BRIDGE_SECRET is not set: generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
        )
    if secret is not None and len(secret) < 32:
        raise ConfigError("BRIDGE_SECRET must be at least 32 characters long.")

    webhooks_raw = env.get("WEBHOOKS", "").strip().lower() or "on"
    if webhooks_raw not in ("on", "off"):
        raise ConfigError(f"WEBHOOKS must be on or off, got {webhooks_raw!r}.")

    return Settings(
        sandbox=sandbox,
        twilio_account_sid=account_sid,
        twilio_auth_token=auth_token,
        twilio_flow_sid=flow_sid,
        twilio_api_base_url=base_url,
        public_url=public_url,
        host=host,
        port=port,
        database_path=_database_path(env),
        bridge_secret=secret,
        reply_wait_seconds=_seconds(env, "REPLY_WAIT_SECONDS", 30.0, MAX_REPLY_WAIT_SECONDS),
        twilio_timeout_seconds=_seconds(env, "TWILIO_TIMEOUT_SECONDS", 10.0, 60.0),
        poll_interval_seconds=_seconds(env, "POLL_INTERVAL_SECONDS", 0.5, 30.0),
        webhooks=webhooks_raw == "on",
        reconcile_interval_seconds=_seconds(env, "RECONCILE_INTERVAL_SECONDS", 300.0, 86400.0),
    )
