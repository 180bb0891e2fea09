"""Where the sandbox may send webhooks: the bridge it stands in for, not anywhere a
caller names (a sandbox reachable from elsewhere must not be a way to make requests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class WebhookTargets:
    """URLs a webhook may be attached with: one of ``prefixes`` (or below it), and any
    loopback http(s) URL when ``loopback``."""

    prefixes: tuple[str, ...] = ()
    loopback: bool = False

    def allows(self, url: str) -> bool:
        for prefix in self.prefixes:
            if url == prefix or url.startswith(prefix.rstrip("/") + "/"):
                return True
        parts = urlsplit(url)
        return (
            self.loopback and parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS
        )

    @classmethod
    def from_setting(cls, allowed: Sequence[str], own: str | None) -> WebhookTargets:
        """SANDBOX_WEBHOOK_URLS (``allowed``): more URLs (or prefixes) webhooks may go to;
        ``loopback`` allows any URL on this machine. Unset: the bridge's ``own`` webhook
        URL when embedded, loopback URLs when the sandbox runs alone (its bridge listens
        on this machine, at a port it cannot know)."""
        prefixes = tuple(u for u in allowed if u != "loopback")
        if own is not None:
            return cls((own, *prefixes), loopback="loopback" in allowed)
        return cls(prefixes, loopback=not allowed or "loopback" in allowed)


def exposure_warning(host: str) -> str:
    """The warning printed when the sandbox listens beyond this machine."""
    rule = "!" * 78
    return "\n".join(
        [
            rule,
            f"WARNING: the sandbox listens on {host}, which other machines can reach.",
            "Its agent console, Twilio emulator and sign-in provider have no real",
            "authentication: anyone who can reach this port can read and answer every",
            "conversation. Use HOST=127.0.0.1 (a tunnel such as ngrok still works), or run",
            "the bridge against real Twilio.",
            rule,
        ]
    )
