"""Settings are validated once, and each failure names the variable to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import (
    SANDBOX_ACCOUNT_SID,
    SANDBOX_FLOW_SID,
    ConfigError,
    load_settings,
)

REAL = {
    "TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
    "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef",
    "TWILIO_FLOW_SID": "FW" + "b" * 32,
    "BRIDGE_SECRET": "config-test-secret-0123456789-abcdef",
    "ALLOW_INSECURE_NO_AUTH": "1",
}


def test_defaults_are_sandbox() -> None:
    settings = load_settings({})
    assert settings.sandbox
    assert settings.twilio_account_sid == SANDBOX_ACCOUNT_SID
    assert settings.twilio_flow_sid == SANDBOX_FLOW_SID
    assert (settings.host, settings.port) == ("127.0.0.1", 5002)
    assert settings.public_url == "http://127.0.0.1:5002"
    assert settings.twilio_base_url == "http://127.0.0.1:5002/sandbox/twilio"
    assert settings.database_path == Path("data/bridge.db")
    assert settings.reply_wait_seconds == 30
    assert settings.bridge_secret is None


def test_real_mode() -> None:
    settings = load_settings({**REAL, "PUBLIC_URL": "https://abc.ngrok.app/"})
    assert not settings.sandbox
    assert settings.twilio_base_url is None
    assert settings.public_url == "https://abc.ngrok.app"


def test_sandbox_forced_with_credentials_accepts_them() -> None:
    settings = load_settings({**REAL, "SANDBOX": "1"})
    assert settings.sandbox
    assert settings.twilio_account_sid == REAL["TWILIO_ACCOUNT_SID"]
    assert settings.twilio_base_url == "http://127.0.0.1:5002/sandbox/twilio"


def test_database_url_forms() -> None:
    assert load_settings({"DATABASE_URL": "sqlite:////var/lib/b.db"}).database_path == Path(
        "/var/lib/b.db"
    )
    assert load_settings({"DATABASE_URL": "sqlite:///x/b.db"}).database_path == Path("x/b.db")
    assert load_settings({"DATABASE_URL": "sqlite:///x/b.db"}).postgres_url is None
    url = "postgresql://bridge:pw@db.internal:5432/bridge"
    assert load_settings({"DATABASE_URL": url}).postgres_url == url
    with pytest.raises(ConfigError, match="DATABASE_URL must name PostgreSQL's host"):
        load_settings({"DATABASE_URL": "postgresql:///bridge"})
    with pytest.raises(ConfigError, match="DATABASE_URL must look like"):
        load_settings({"DATABASE_URL": "mysql://db/bridge"})


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({**REAL, "TWILIO_ACCOUNT_SID": ""}, "TWILIO_ACCOUNT_SID"),
        ({**REAL, "TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_ACCOUNT_SID"),
        ({**REAL, "TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN"),
        ({**REAL, "TWILIO_FLOW_SID": ""}, "TWILIO_FLOW_SID"),
        ({**REAL, "TWILIO_FLOW_SID": "XX" + "b" * 32}, "TWILIO_FLOW_SID"),
        ({**REAL, "BRIDGE_SECRET": ""}, "BRIDGE_SECRET"),
        ({**REAL, "BRIDGE_SECRET": "short"}, "BRIDGE_SECRET"),
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PUBLIC_URL": "example.com"}, "PUBLIC_URL"),
        ({"PUBLIC_URL": "https://x.io/?a=1"}, "PUBLIC_URL"),
        ({"TWILIO_API_BASE_URL": "ftp://x"}, "TWILIO_API_BASE_URL"),
        ({"DATABASE_URL": "postgresql:///no-host"}, "DATABASE_URL"),
        ({"REPLY_WAIT_SECONDS": "41"}, "REPLY_WAIT_SECONDS"),
        ({"REPLY_WAIT_SECONDS": "0"}, "REPLY_WAIT_SECONDS"),
        ({"REPLY_WAIT_SECONDS": "soon"}, "REPLY_WAIT_SECONDS"),
        ({"SANDBOX": "maybe"}, "SANDBOX"),
        ({"ROUTING": "carrier-pigeon"}, "ROUTING"),
        ({**REAL, "ROUTING": "interactions"}, "TWILIO_WORKSPACE_SID"),
        (
            {**REAL, "ROUTING": "interactions", "TWILIO_WORKSPACE_SID": "WS" + "a" * 32},
            "TWILIO_WORKFLOW_SID",
        ),
        ({"TWILIO_WORKSPACE_SID": "WS123"}, "TWILIO_WORKSPACE_SID"),
        ({"TWILIO_WORKFLOW_SID": "WS" + "a" * 32}, "TWILIO_WORKFLOW_SID"),
        ({"TWILIO_TASK_CHANNEL": "chat room"}, "TWILIO_TASK_CHANNEL"),
        ({"TWILIO_FLEX_API_BASE_URL": "ftp://x"}, "TWILIO_FLEX_API_BASE_URL"),
        ({"TWILIO_TASKROUTER_API_BASE_URL": "x"}, "TWILIO_TASKROUTER_API_BASE_URL"),
        ({"POLL_INTERVAL_SECONDS": "0"}, "POLL_INTERVAL_SECONDS"),
        ({"POLL_INTERVAL_SECONDS": "5", "POLL_MAX_INTERVAL_SECONDS": "3"}, "POLL_MAX_INTERVAL"),
        ({"POLL_STATE_SECONDS": "-1"}, "POLL_STATE_SECONDS"),
        ({"POLL_CALLS_PER_MINUTE": "0"}, "POLL_CALLS_PER_MINUTE"),
        ({**REAL, "BRIDGE_SECRET": "a" * 40}, "BRIDGE_SECRET"),
        ({**REAL, "BRIDGE_SECRET": "change-me-change-me-change-me-0123"}, "BRIDGE_SECRET"),
        ({**REAL, "TWILIO_AUTH_TOKEN": "not-a-twilio-token"}, "TWILIO_AUTH_TOKEN"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
        ({"METRICS_TOKEN": "ab" * 16}, "METRICS_TOKEN"),
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "https://app.example.com/path"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "app.example.com"}, "CORS_ORIGINS"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"LOG_MESSAGE_BODIES": "sometimes"}, "LOG_MESSAGE_BODIES"),
        ({"KEEP_ALIVE_SECONDS": "0"}, "KEEP_ALIVE_SECONDS"),
        ({"ALLOWED_HOSTS": "https://example.com"}, "ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": "a b"}, "ALLOWED_HOSTS"),
        ({"SANDBOX_WEBHOOK_URLS": "ftp://x.example"}, "SANDBOX_WEBHOOK_URLS"),
        ({"SANDBOX_WEBHOOK_URLS": "anywhere"}, "SANDBOX_WEBHOOK_URLS"),
        ({"AUTH_MODE": "oauth", "OAUTH_TRUSTED_CLIENTS": "everyone"}, "OAUTH_TRUSTED_CLIENTS"),
        (
            {"AUTH_MODE": "oauth", "OAUTH_TRUSTED_CLIENTS": "http://x.example/cb"},
            "OAUTH_TRUSTED_CLIENTS",
        ),
        ({"OAUTH_AUTHORIZE_PER_MINUTE": "0"}, "OAUTH_AUTHORIZE_PER_MINUTE"),
    ],
)
def test_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(env)


def test_no_auth_outside_the_sandbox_is_refused_unless_allowed() -> None:
    strict = {k: v for k, v in REAL.items() if k != "ALLOW_INSECURE_NO_AUTH"}
    with pytest.raises(ConfigError, match="ALLOW_INSECURE_NO_AUTH"):
        load_settings(strict)
    keyed = {**strict, "AUTH_MODE": "apikey", "API_KEYS": "key-0123456789-abcdef"}
    assert load_settings(keyed).auth.mode == "apikey"
    assert load_settings({**strict, "ALLOW_INSECURE_NO_AUTH": "1"}).auth.mode == "none"
    assert load_settings({}).auth.mode == "none"  # the sandbox needs no flag


def test_interactions_routing_needs_no_flow() -> None:
    settings = load_settings(
        {
            **REAL,
            "TWILIO_FLOW_SID": "",
            "ROUTING": "interactions",
            "TWILIO_WORKSPACE_SID": "WS" + "a" * 32,
            "TWILIO_WORKFLOW_SID": "WW" + "b" * 32,
            "TWILIO_TASK_CHANNEL": "TC" + "c" * 32,
        }
    )
    assert settings.routing == "interactions"
    assert settings.twilio_flow_sid == ""
    assert settings.twilio_task_channel == "TC" + "c" * 32
    sandbox = load_settings({"ROUTING": "Interactions"})
    assert sandbox.twilio_workspace_sid.startswith("WS")
    assert sandbox.twilio_task_channel == "chat"


def test_poll_pace_defaults_and_a_slowest_pace_below_a_fast_one() -> None:
    settings = load_settings({})
    assert (settings.poll_interval_seconds, settings.poll_max_interval_seconds) == (2.0, 10.0)
    assert (settings.poll_state_seconds, settings.poll_calls_per_minute) == (30.0, 600)
    # A fastest pace above the default slowest one lifts the slowest with it.
    assert load_settings({"POLL_INTERVAL_SECONDS": "20"}).poll_max_interval_seconds == 20.0


def test_reply_wait_accepts_up_to_40() -> None:
    assert load_settings({"REPLY_WAIT_SECONDS": "40"}).reply_wait_seconds == 40


def test_operations_settings() -> None:
    settings = load_settings(
        {
            "CORS_ORIGINS": "https://app.example.com, http://localhost:3000/",
            "LOG_FORMAT": "JSON",
            "LOG_LEVEL": "warning",
            "LOG_MESSAGE_BODIES": "1",
            "METRICS_TOKEN": "metrics-0123456789-abcdef",
            "KEEP_ALIVE_SECONDS": "30",
        }
    )
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")
    assert (settings.log_format, settings.log_level) == ("json", "WARNING")
    assert settings.log_message_bodies and settings.keep_alive_seconds == 30
    assert settings.metrics_token == "metrics-0123456789-abcdef"
    defaults = load_settings({})
    assert defaults.cors_origins == () and defaults.metrics_token is None
    assert (defaults.log_format, defaults.log_level, defaults.log_message_bodies) == (
        "text",
        "INFO",
        False,
    )


def test_an_emulator_base_url_takes_any_token() -> None:
    """Only Twilio's own tokens must be 32 hex digits; an emulator has its own."""
    env = {**REAL, "TWILIO_AUTH_TOKEN": "sandbox-auth-token", "TWILIO_API_BASE_URL": "http://e/x"}
    assert load_settings(env).twilio_auth_token == "sandbox-auth-token"
