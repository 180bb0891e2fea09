"""Settings: read from the environment once, validated, failing fast with the variable to fix."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bridge.hours import BusinessHours, HoursError, parse_hours

#: Credentials the embedded sandbox accepts when no real ones are configured. They only
#: ever open the local emulator, so they are safe to print and document.
SANDBOX_ACCOUNT_SID = "AC" + "0" * 32
SANDBOX_AUTH_TOKEN = "sandbox-auth-token"  # noqa: S105 - a documented, local-only value
SANDBOX_FLOW_SID = "FW" + "0" * 32
#: The sandbox's TaskRouter workspace and workflow, fixed so settings can name them.
SANDBOX_WORKSPACE_SID = "WS" + "0" * 32
SANDBOX_WORKFLOW_SID = "WW" + "0" * 32
ROUTINGS = ("studio", "interactions")
#: When the team is closed or nobody is available: open the conversation anyway and hand
#: the reply out later, or send nothing and let the assistant carry on.
UNAVAILABLE_POLICIES = ("take_message", "decline")
_TASK_CHANNEL = re.compile(r"^(TC[0-9a-fA-F]{32}|[A-Za-z0-9_-]{1,64})$")

MAX_REPLY_WAIT_SECONDS = 40.0
_SID = re.compile(r"^{prefix}[0-9a-fA-F]{{32}}$")


#: The sandbox's development OpenID Connect provider and its client (local only).
SANDBOX_IDP_CLIENT_ID = "flex-bridge-dev"
SANDBOX_IDP_CLIENT_SECRET = "flex-bridge-dev-secret"  # noqa: S105 - documented, local-only
#: The OAuth client a GPT uses against the sandbox bridge (local only).
SANDBOX_OAUTH_CLIENT_ID = "gpt-dev"
#: In the sandbox, where the dev client's authorization lands: a page showing the token
#: and the next call to make with it (the start-up banner prints the link).
SANDBOX_SIGNED_IN_PATH = "/oauth/signed-in"
SANDBOX_OAUTH_CLIENT_SECRET = "gpt-dev-secret"  # noqa: S105 - documented, local-only

#: Where ChatGPT sends users back after signing in; only the GPT id varies.
DEFAULT_REDIRECT_URIS = (
    "https://chatgpt.com/aip/g-{id}/oauth/callback",
    "https://chat.openai.com/aip/g-{id}/oauth/callback",
)
AUTH_MODES = ("none", "apikey", "oauth")
#: Redirect URIs the assistants document for their MCP connectors, trusted by name in
#: OAUTH_TRUSTED_CLIENTS: a client registered with only these skips the consent page.
TRUSTED_CALLBACKS = {
    "chatgpt": ("https://chatgpt.com/connector_platform_oauth_redirect",),
    "claude": (
        "https://claude.ai/api/mcp/auth_callback",
        "https://claude.com/api/mcp/auth_callback",
    ),
}


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the service to this machine."""
    bare = host.strip("[]").lower()
    return bare in ("localhost", "::1") or bare.startswith("127.")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable to fix."""


@dataclass(frozen=True)
class AuthSettings:
    mode: str = "none"  # none | apikey | oauth
    api_keys: tuple[str, ...] = ()
    api_key_header: str = "X-API-Key"
    oauth_client_id: str = ""
    oauth_client_secret_hash: str = ""  # SHA-256 hex: the secret itself is not kept
    redirect_uris: tuple[str, ...] = DEFAULT_REDIRECT_URIS
    scope: str = "handoff"
    code_seconds: int = 60
    access_token_seconds: int = 3600
    refresh_token_seconds: int = 30 * 24 * 3600
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    share_profile_with_agent: bool = False
    rate_limit_per_minute: int = 30
    #: The configured GPT client skips the consent page (it is the operator's own).
    trust_gpt_client: bool = True
    #: Registered clients whose redirect URIs are all among these skip the consent page.
    trusted_redirect_uris: tuple[str, ...] = ()
    #: Sign-ins started and clients registered per minute, from one address and overall.
    authorize_per_minute: int = 30
    register_per_minute: int = 10


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
    #: With webhooks off: the fastest and slowest pace of reading a waited-on
    #: conversation's messages, how often its state is read, and the reads per minute
    #: allowed for the whole account.
    poll_interval_seconds: float = 2.0
    poll_max_interval_seconds: float = 10.0
    poll_state_seconds: float = 30.0
    poll_calls_per_minute: int = 600
    max_message_chars: int = 8000
    webhooks: bool = True
    reconcile_interval_seconds: float = 300.0
    auth: AuthSettings = AuthSettings()
    log_format: str = "text"  # text (key=value) | json
    log_level: str = "INFO"
    log_message_bodies: bool = False
    cors_origins: tuple[str, ...] = ()
    metrics_token: str | None = None
    keep_alive_seconds: float = 75.0
    #: Calls one user, and all users, may have waiting for a reply at once.
    max_waiting_per_user: int = 10
    max_waiting_calls: int = 20_000
    #: Conversations all users together may open per minute.
    new_conversations_per_minute: int = 600
    #: More Host header values to answer (beyond PUBLIC_URL's and the local address).
    extra_hosts: tuple[str, ...] = ()
    #: Where the embedded sandbox may deliver webhooks besides the bridge (or "loopback").
    sandbox_webhook_urls: tuple[str, ...] = ()
    #: How a conversation reaches Flex: a Studio flow, or the Interactions API directly.
    routing: str = "studio"
    #: The Flex TaskRouter workspace, workflow and task channel (ROUTING=interactions).
    twilio_workspace_sid: str = ""
    twilio_workflow_sid: str = ""
    twilio_task_channel: str = "chat"
    #: Emulators of Flex and TaskRouter (None: Twilio's own, or the embedded sandbox).
    flex_api_base_url: str | None = None
    taskrouter_api_base_url: str | None = None
    studio_api_base_url: str | None = None
    #: When the support team works (None: always), what to do when it is closed or no
    #: agent is available (take_message | decline), how long nobody may accept before the
    #: user is asked what they want (None: never), and how often queue figures are read.
    business_hours: BusinessHours | None = None
    unavailable_policy: str = "take_message"
    assignment_timeout_seconds: float | None = 300.0
    queue_refresh_seconds: float = 5.0
    #: DATABASE_URL when it names PostgreSQL (None: the SQLite file at database_path).
    postgres_url: str | None = None

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
    def allowed_hosts(self) -> frozenset[str]:
        """Host header values this service answers (lower case): PUBLIC_URL's, the local
        address, ALLOWED_HOSTS. Anything else is a DNS-rebinding attempt or a stray."""
        public = urlsplit(self.public_url)
        default_port = 443 if public.scheme == "https" else 80
        hosts = {
            public.netloc.lower(),
            f"{(public.hostname or '').lower()}:{public.port or default_port}",
        }
        if public.port in (None, default_port):
            hosts.add((public.hostname or "").lower())
        local = urlsplit(self.local_url)
        hosts |= {local.netloc, f"localhost:{self.port}", f"[::1]:{self.port}"}
        if self.host not in ("", "0.0.0.0", "::"):  # noqa: S104 - compared, not bound
            hosts.add(f"{self.host}:{self.port}".lower())
        return frozenset(hosts | {h.lower() for h in self.extra_hosts})

    @property
    def twilio_base_url(self) -> str | None:
        """Base URL for the Conversations API; None means Twilio itself."""
        if self.twilio_api_base_url:
            return self.twilio_api_base_url
        if self.sandbox:
            return f"{self.local_url}/sandbox/twilio"
        return None

    @property
    def flex_base_url(self) -> str | None:
        """Base URL for the Flex API (Interactions); None means Twilio itself."""
        if self.flex_api_base_url:
            return self.flex_api_base_url
        return f"{self.local_url}/sandbox/flex" if self.sandbox else None

    @property
    def taskrouter_base_url(self) -> str | None:
        """Base URL for the TaskRouter API; None means Twilio itself."""
        if self.taskrouter_api_base_url:
            return self.taskrouter_api_base_url
        return f"{self.local_url}/sandbox/taskrouter" if self.sandbox else None

    @property
    def studio_base_url(self) -> str | None:
        """Base URL for the Studio API (the flow's check); None means Twilio itself."""
        if self.studio_api_base_url:
            return self.studio_api_base_url
        return f"{self.local_url}/sandbox/studio" if self.sandbox else None

    @property
    def taskrouter_event_url(self) -> str:
        """Where the Flex workspace's event callback must point (and what it signs)."""
        return f"{self.public_url}/twilio/taskrouter"


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


def _database(env: Mapping[str, str]) -> tuple[Path, str | None]:
    """DATABASE_URL: a SQLite file's path, or a PostgreSQL URL (then the path is unused)."""
    raw = env.get("DATABASE_URL", "").strip() or "sqlite:///data/bridge.db"
    if raw.startswith(("postgresql://", "postgres://")):
        if not urlsplit(raw).hostname and "host=" not in raw:
            raise ConfigError(
                "DATABASE_URL must name PostgreSQL's host: "
                "postgresql://user:password@host:5432/dbname."
            )
        return Path(), raw
    prefix = "sqlite:///"
    if not raw.startswith(prefix) or len(raw) == len(prefix):
        raise ConfigError(
            "DATABASE_URL must look like sqlite:///data/bridge.db (relative), "
            "sqlite:////var/lib/bridge.db (absolute) or postgresql://user:password@host/db, "
            f"got {raw[:40]!r}."
        )
    return Path(raw[len(prefix) :]), None


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


def _whole(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}.") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}.")
    return value


def _auth_settings(
    env: Mapping[str, str], sandbox: bool, local_url: str, public_url: str
) -> AuthSettings:
    mode = env.get("AUTH_MODE", "").strip().lower() or "none"
    if mode not in AUTH_MODES:
        raise ConfigError(f"AUTH_MODE must be one of {', '.join(AUTH_MODES)}, got {mode!r}.")
    if mode == "none" and not sandbox and _bool(env, "ALLOW_INSECURE_NO_AUTH") is not True:
        raise ConfigError(
            "AUTH_MODE is none, so anyone who guesses a user name could read that user's "
            "replies. Set AUTH_MODE=apikey or AUTH_MODE=oauth, or ALLOW_INSECURE_NO_AUTH=1 to "
            "accept that risk (for a private network only)."
        )
    keys = tuple(k.strip() for k in env.get("API_KEYS", "").split(",") if k.strip())
    if mode == "apikey":
        if not keys:
            raise ConfigError("API_KEYS is not set: give one or more keys, comma-separated.")
        for key in keys:
            _strong("API_KEYS (each key)", key, 16)
    header = env.get("API_KEY_HEADER", "").strip() or "X-API-Key"
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", header) or header.lower() == "authorization":
        raise ConfigError(f"API_KEY_HEADER must be an HTTP header name, got {header!r}.")

    client_id = env.get("OAUTH_CLIENT_ID", "").strip()
    client_secret = env.get("OAUTH_CLIENT_SECRET", "").strip()
    issuer = env.get("OIDC_ISSUER", "").strip()
    oidc_id = env.get("OIDC_CLIENT_ID", "").strip()
    oidc_secret = env.get("OIDC_CLIENT_SECRET", "").strip()
    if mode == "oauth":
        if sandbox:
            client_id = client_id or SANDBOX_OAUTH_CLIENT_ID
            client_secret = client_secret or SANDBOX_OAUTH_CLIENT_SECRET
            if not issuer:
                issuer = f"{local_url}/sandbox/idp"
                oidc_id = oidc_id or SANDBOX_IDP_CLIENT_ID
                oidc_secret = oidc_secret or SANDBOX_IDP_CLIENT_SECRET
        for name, value in (
            ("OAUTH_CLIENT_ID", client_id),
            ("OAUTH_CLIENT_SECRET", client_secret),
            ("OIDC_ISSUER", issuer),
            ("OIDC_CLIENT_ID", oidc_id),
            ("OIDC_CLIENT_SECRET", oidc_secret),
        ):
            if not value:
                raise ConfigError(f"{name} is not set: AUTH_MODE=oauth needs it (see docs).")
        if not sandbox:
            _strong("OAUTH_CLIENT_SECRET", client_secret, 24)
        issuer = _url("OIDC_ISSUER", issuer)
    raw_uris = env.get("OAUTH_REDIRECT_URIS", "").strip()
    uris = tuple(u.strip() for u in raw_uris.split(",") if u.strip()) or DEFAULT_REDIRECT_URIS
    for uri in uris:
        _url("OAUTH_REDIRECT_URIS", uri.replace("{id}", "x"))
    if sandbox:
        uris = (*uris, f"{public_url}{SANDBOX_SIGNED_IN_PATH}")
    trust_gpt, trusted_uris = _trusted_clients(env)
    return AuthSettings(
        mode=mode,
        api_keys=keys,
        api_key_header=header,
        oauth_client_id=client_id,
        oauth_client_secret_hash=hashlib.sha256(client_secret.encode()).hexdigest()
        if client_secret
        else "",
        redirect_uris=uris,
        scope="handoff",
        code_seconds=_whole(env, "OAUTH_CODE_SECONDS", 60, 1, 60),
        access_token_seconds=_whole(env, "ACCESS_TOKEN_SECONDS", 3600, 1, 86400),
        refresh_token_seconds=_whole(env, "REFRESH_TOKEN_SECONDS", 30 * 86400, 1, 365 * 86400),
        oidc_issuer=issuer,
        oidc_client_id=oidc_id,
        oidc_client_secret=oidc_secret,
        share_profile_with_agent=_bool(env, "SHARE_PROFILE_WITH_AGENT") is True,
        rate_limit_per_minute=_whole(env, "RATE_LIMIT_PER_MINUTE", 30, 1, 10000),
        trust_gpt_client=trust_gpt,
        trusted_redirect_uris=trusted_uris,
        authorize_per_minute=_whole(env, "OAUTH_AUTHORIZE_PER_MINUTE", 30, 1, 100000),
        register_per_minute=_whole(env, "OAUTH_REGISTER_PER_MINUTE", 10, 1, 100000),
    )


def _trusted_clients(env: Mapping[str, str]) -> tuple[bool, tuple[str, ...]]:
    """OAUTH_TRUSTED_CLIENTS: ``gpt``, ``chatgpt``, ``claude`` and exact redirect URIs."""
    raw = env.get("OAUTH_TRUSTED_CLIENTS")
    names = [n.strip() for n in (raw if raw is not None else "gpt").split(",") if n.strip()]
    uris: list[str] = []
    gpt = False
    for name in names:
        if name == "gpt":
            gpt = True
        elif name in TRUSTED_CALLBACKS:
            uris += TRUSTED_CALLBACKS[name]
        elif name.startswith("https://") and _url("OAUTH_TRUSTED_CLIENTS", name):
            uris.append(name)
        else:
            raise ConfigError(
                "OAUTH_TRUSTED_CLIENTS lists gpt, chatgpt, claude or exact https redirect "
                f"URIs, comma-separated; got {name!r}."
            )
    return gpt, tuple(uris)


#: Values from .env.example and documentation that must never guard a real deployment.
_PLACEHOLDERS = (
    "change-me",
    "changeme",
    "replace-me",
    "replace_me",
    "your-",
    "your_",
    "<",
    "xxxxxxxx",
)


def _strong(name: str, value: str, minimum: int) -> str:
    """Refuse a secret that is short, a placeholder, or made of too few distinct characters."""
    lowered = value.lower()
    if len(value) < minimum:
        raise ConfigError(f"{name} must be at least {minimum} characters long.")
    if any(word in lowered for word in _PLACEHOLDERS) or len(set(value)) < 8:
        raise ConfigError(
            f"{name} looks like a placeholder or a weak value; generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
        )
    return value


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    origins = []
    for raw in env.get("CORS_ORIGINS", "").split(","):
        raw = raw.strip()
        if not raw:
            continue
        if raw == "*":
            raise ConfigError(
                "CORS_ORIGINS must list origins such as https://app.example.com; '*' would let "
                "any web page call the API with a user's credentials."
            )
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ConfigError(
                f"CORS_ORIGINS: {raw!r} is not an origin (scheme://host[:port], no path)."
            )
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(origins)


def _log_settings(env: Mapping[str, str]) -> tuple[str, str, bool]:
    fmt = env.get("LOG_FORMAT", "").strip().lower() or "text"
    if fmt not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT must be text or json, got {fmt!r}.")
    level = env.get("LOG_LEVEL", "").strip().upper() or "INFO"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}.")
    return fmt, level, _bool(env, "LOG_MESSAGE_BODIES") is True


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

    routing = env.get("ROUTING", "").strip().lower() or "studio"
    if routing not in ROUTINGS:
        raise ConfigError(f"ROUTING must be studio or interactions, got {routing!r}.")
    if env.get("TWILIO_FLOW_SID", "").strip():
        flow_sid = _sid(env, "TWILIO_FLOW_SID", "FW")
    elif sandbox:
        flow_sid = SANDBOX_FLOW_SID
    elif routing == "studio":
        raise ConfigError(
            "TWILIO_FLOW_SID is not set: give the FW… SID of the Studio flow that "
            "sends conversations to Flex (or set ROUTING=interactions)."
        )
    else:
        flow_sid = ""
    workspace_sid, workflow_sid, task_channel = _flex_routing(env, sandbox, routing)
    database = _database(env)
    poll = _poll_settings(env)

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
    if secret is not None:
        _strong("BRIDGE_SECRET", secret, 32)
    if not sandbox and base_url is None and not re.fullmatch(r"[0-9a-f]{32}", auth_token):
        # Twilio's auth tokens are 32 hex digits; anything else is a paste error or an
        # API key secret in the wrong variable.
        raise ConfigError(
            "TWILIO_AUTH_TOKEN must be the account's auth token: 32 hex digits from the "
            "Twilio console (an API key secret does not work here)."
        )
    metrics_token = env.get("METRICS_TOKEN", "").strip() or None
    if metrics_token is not None:
        _strong("METRICS_TOKEN", metrics_token, 16)
    log_format, log_level, log_bodies = _log_settings(env)

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
        database_path=database[0],
        postgres_url=database[1],
        bridge_secret=secret,
        reply_wait_seconds=_seconds(env, "REPLY_WAIT_SECONDS", 30.0, MAX_REPLY_WAIT_SECONDS),
        twilio_timeout_seconds=_seconds(env, "TWILIO_TIMEOUT_SECONDS", 10.0, 60.0),
        poll_interval_seconds=poll[0],
        poll_max_interval_seconds=poll[1],
        poll_state_seconds=poll[2],
        poll_calls_per_minute=poll[3],
        webhooks=webhooks_raw == "on",
        auth=_auth_settings(
            env, sandbox, local_url=f"http://{local_host}:{port}", public_url=public_url
        ),
        reconcile_interval_seconds=_seconds(env, "RECONCILE_INTERVAL_SECONDS", 300.0, 86400.0),
        log_format=log_format,
        log_level=log_level,
        log_message_bodies=log_bodies,
        cors_origins=_origins(env),
        metrics_token=metrics_token,
        keep_alive_seconds=_seconds(env, "KEEP_ALIVE_SECONDS", 75.0, 3600.0),
        max_waiting_per_user=_whole(env, "MAX_WAITING_PER_USER", 10, 1, 1000),
        max_waiting_calls=_whole(env, "MAX_WAITING_CALLS", 20_000, 1, 1_000_000),
        new_conversations_per_minute=_whole(env, "NEW_CONVERSATIONS_PER_MINUTE", 600, 1, 1_000_000),
        extra_hosts=_hosts(env),
        sandbox_webhook_urls=sandbox_webhook_urls(env),
        routing=routing,
        twilio_workspace_sid=workspace_sid,
        twilio_workflow_sid=workflow_sid,
        twilio_task_channel=task_channel,
        flex_api_base_url=_optional_url(env, "TWILIO_FLEX_API_BASE_URL"),
        taskrouter_api_base_url=_optional_url(env, "TWILIO_TASKROUTER_API_BASE_URL"),
        studio_api_base_url=_optional_url(env, "TWILIO_STUDIO_API_BASE_URL"),
        business_hours=_business_hours(env),
        unavailable_policy=_choice(env, "UNAVAILABLE_POLICY", UNAVAILABLE_POLICIES),
        assignment_timeout_seconds=_assignment_timeout(env),
        queue_refresh_seconds=_queue_refresh(env, sandbox),
    )


def _business_hours(env: Mapping[str, str]) -> BusinessHours | None:
    raw = env.get("BUSINESS_HOURS", "").strip()
    if not raw:
        return None
    try:
        return parse_hours(raw)
    except HoursError as error:
        raise ConfigError(
            f"BUSINESS_HOURS {error} (write e.g. 'Europe/London; Mon-Fri 09:00-17:30; "
            "closed 2026-12-25')."
        ) from None


def _queue_refresh(env: Mapping[str, str], sandbox: bool) -> float:
    """QUEUE_REFRESH_SECONDS: at least a second against Twilio, whose account-wide
    allowance this spends."""
    seconds = _seconds(env, "QUEUE_REFRESH_SECONDS", 5.0, 300.0)
    if seconds < 1 and not sandbox:
        raise ConfigError(
            f"QUEUE_REFRESH_SECONDS must be at least 1 outside the sandbox, got {seconds:g}."
        )
    return seconds


def _assignment_timeout(env: Mapping[str, str]) -> float | None:
    """ASSIGNMENT_TIMEOUT_SECONDS: 300 by default; ``off`` (or 0) never asks."""
    if env.get("ASSIGNMENT_TIMEOUT_SECONDS", "").strip().lower() in ("off", "0"):
        return None
    return _seconds(env, "ASSIGNMENT_TIMEOUT_SECONDS", 300.0, 86400.0)


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    """One of ``allowed`` (the first by default)."""
    value = env.get(name, "").strip().lower() or allowed[0]
    if value not in allowed:
        raise ConfigError(f"{name} must be {' or '.join(allowed)}, got {value[:30]!r}.")
    return value


def _poll_settings(env: Mapping[str, str]) -> tuple[float, float, float, int]:
    """POLL_INTERVAL_SECONDS, POLL_MAX_INTERVAL_SECONDS, POLL_STATE_SECONDS and
    POLL_CALLS_PER_MINUTE."""
    fastest = _seconds(env, "POLL_INTERVAL_SECONDS", 2.0, 30.0)
    slowest = _seconds(env, "POLL_MAX_INTERVAL_SECONDS", max(10.0, fastest), 300.0)
    if slowest < fastest:
        raise ConfigError(
            f"POLL_MAX_INTERVAL_SECONDS ({slowest:g}) must be at least POLL_INTERVAL_SECONDS "
            f"({fastest:g})."
        )
    return (
        fastest,
        slowest,
        _seconds(env, "POLL_STATE_SECONDS", 30.0, 3600.0),
        _whole(env, "POLL_CALLS_PER_MINUTE", 600, 1, 100_000),
    )


def _optional_url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    return _url(name, raw) if raw else None


def _flex_routing(env: Mapping[str, str], sandbox: bool, routing: str) -> tuple[str, str, str]:
    """TWILIO_WORKSPACE_SID, TWILIO_WORKFLOW_SID (the sandbox's by default there; required
    with ROUTING=interactions against Twilio) and TWILIO_TASK_CHANNEL."""
    needed = routing == "interactions" and not sandbox
    sids: list[str] = []
    for name, prefix, sandbox_sid, what in (
        ("TWILIO_WORKSPACE_SID", "WS", SANDBOX_WORKSPACE_SID, "the Flex TaskRouter workspace"),
        ("TWILIO_WORKFLOW_SID", "WW", SANDBOX_WORKFLOW_SID, "the workflow that routes chats"),
    ):
        if env.get(name, "").strip():
            sids.append(_sid(env, name, prefix))
        elif sandbox:
            sids.append(sandbox_sid)
        elif needed:
            raise ConfigError(
                f"{name} is not set: ROUTING=interactions needs the {prefix}… SID of {what} "
                "(Console > TaskRouter > Workspaces)."
            )
        else:
            sids.append("")
    channel = env.get("TWILIO_TASK_CHANNEL", "").strip() or "chat"
    if not _TASK_CHANNEL.match(channel):
        raise ConfigError(
            "TWILIO_TASK_CHANNEL must be a task channel's unique name (such as chat) or its "
            f"TC… SID, got {channel[:20]!r}."
        )
    return sids[0], sids[1], channel


def _hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    hosts = tuple(h.strip() for h in env.get("ALLOWED_HOSTS", "").split(",") if h.strip())
    for host in hosts:
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", host):
            raise ConfigError(
                f"ALLOWED_HOSTS lists host[:port] values, comma-separated; got {host!r}."
            )
    return hosts


def sandbox_webhook_urls(env: Mapping[str, str]) -> tuple[str, ...]:
    """SANDBOX_WEBHOOK_URLS: ``loopback`` or http(s) URLs (prefixes), comma-separated."""
    urls = tuple(u.strip() for u in env.get("SANDBOX_WEBHOOK_URLS", "").split(",") if u.strip())
    for url in urls:
        if url != "loopback":
            _url("SANDBOX_WEBHOOK_URLS", url)
    return urls
