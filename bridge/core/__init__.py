"""The hand-off core: what happens to a user's message and an agent's reply, whichever
front door (the HTTP API, the MCP tools) they came through.

- :mod:`bridge.core.service`: the three operations (send, replies, end), their input
  checks and limits, answering an outcome kind;
- :mod:`bridge.core.opening`: finding or opening a user's conversation and routing it;
- :mod:`bridge.core.outbox`: user messages, stored first, posted until Twilio takes them;
- :mod:`bridge.core.inbox`: agent messages, from webhooks or reads, stored first;
- :mod:`bridge.core.waiters`: requests waiting a bounded time for a reply;
- :mod:`bridge.core.poller` and :mod:`bridge.core.reconciler`: reading Twilio when a
  webhook cannot be relied on.

It knows Twilio (:class:`bridge.conversations.TwilioConversations`), the store
(:class:`bridge.store.Store`), coordination (:mod:`bridge.coordination`) and routing
(:class:`bridge.routing.Router`) only through their protocols.
"""
