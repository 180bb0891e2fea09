"""What /metrics reports: Prometheus counters, histograms and gauges for one bridge.

Each app gets its own registry (several apps may live in one test process). Modules
count through a :class:`Metrics` handed to them at start-up; gauges read from the store
are set when /metrics is scraped.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Buckets for the wait inside /send and /replies (at most REPLY_WAIT_SECONDS, 40 s).
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 40)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.handoffs_started = Counter(
            "flexbridge_handoffs_started",
            "Conversations opened in Twilio for a user (the first message of a hand-off).",
            registry=registry,
        )
        self.user_messages_received = Counter(
            "flexbridge_user_messages_received",
            "User messages accepted from assistants and stored in the outbox.",
            registry=registry,
        )
        self.user_messages_posted = Counter(
            "flexbridge_user_messages_posted",
            "User messages posted to Twilio (each once, retries included).",
            registry=registry,
        )
        self.agent_messages_received = Counter(
            "flexbridge_agent_messages_received",
            "Agent messages stored, from webhooks or from reading the message list.",
            ["source"],
            registry=registry,
        )
        self.replies_delivered = Counter(
            "flexbridge_replies_delivered",
            "Agent replies handed out to assistants (each exactly once).",
            registry=registry,
        )
        self.wait_seconds = Histogram(
            "flexbridge_reply_wait_seconds",
            "Time a /send or /replies call spent waiting for an agent reply, by outcome.",
            ["outcome"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.twilio_calls = Counter(
            "flexbridge_twilio_calls",
            "Twilio REST calls by operation and outcome (ok, rejected, unavailable).",
            ["operation", "outcome"],
            registry=registry,
        )
        self.webhook_signature_failures = Counter(
            "flexbridge_webhook_signature_failures",
            "Requests to /twilio/events refused for a missing or wrong X-Twilio-Signature.",
            registry=registry,
        )
        self.webhooks_received = Counter(
            "flexbridge_webhooks_received",
            "Signed Twilio webhooks accepted at /twilio/events, by event type.",
            ["event"],
            registry=registry,
        )
        self.open_conversations = Gauge(
            "flexbridge_open_conversations",
            "Conversations open in Twilio (read from the store when scraped).",
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "flexbridge_outbox_depth",
            "User messages stored but not yet posted to Twilio (read when scraped).",
            registry=registry,
        )
        self.wake_delivery_seconds = Histogram(
            "flexbridge_wake_delivery_seconds",
            "With PostgreSQL: time from another process's wake-up (NOTIFY) to its arrival.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
            registry=registry,
        )
        self.waiting_requests = Gauge(
            "flexbridge_waiting_requests",
            "Requests waiting for an agent reply right now.",
            registry=registry,
        )

    def twilio_call(self, operation: str, outcome: str) -> None:
        self.twilio_calls.labels(operation, outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
