// Agent console: the sandbox's stand-in for the Flex agent UI.
//
// All text from conversations is put on the page with textContent, never parsed as HTML.
"use strict";

(() => {
  const API = "/sandbox/console";
  const DEFAULT_AGENT = "agent.alex";
  const AGENT_KEY = "flexBridge.console.agentName";
  const NARROW = window.matchMedia("(max-width: 760px)");

  const els = {
    connection: byId("connection"),
    connectionText: byId("connection-text"),
    agent: byId("agent-name"),
    layout: byId("layout"),
    queueList: byId("queue-list"),
    queueEmpty: byId("queue-empty"),
    queueCount: byId("queue-count"),
    chatEmpty: byId("chat-empty"),
    chatView: byId("chat-view"),
    chatTitle: byId("chat-title"),
    chatStatus: byId("chat-status"),
    chatMeta: byId("chat-meta-text"),
    chatError: byId("chat-error"),
    back: byId("back"),
    accept: byId("accept"),
    end: byId("end"),
    transcript: byId("transcript"),
    composer: byId("composer"),
    reply: byId("reply"),
    send: byId("send"),
    hint: byId("composer-hint"),
  };

  const state = {
    conversations: new Map(), // sid -> summary, from the latest queue snapshot
    order: [],
    selected: null, // sid of the open conversation
    shown: null, // { sid, lastIndex, key } of what the transcript shows
    clockOffset: 0, // server time minus local time, in milliseconds
    transcriptRequest: 0,
    busy: false,
  };

  function byId(id) {
    return document.getElementById(id);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- agent name -------------------------------------------------------------------------

  function storedAgent() {
    try {
      return window.localStorage.getItem(AGENT_KEY) || DEFAULT_AGENT;
    } catch {
      return DEFAULT_AGENT;
    }
  }

  function agentName() {
    return els.agent.value.trim() || DEFAULT_AGENT;
  }

  els.agent.value = storedAgent();
  els.agent.addEventListener("input", () => {
    try {
      window.localStorage.setItem(AGENT_KEY, els.agent.value.trim());
    } catch {
      // Storage may be unavailable (private mode); the name still works for this page.
    }
    renderConversation();
  });
  els.agent.addEventListener("blur", () => {
    if (!els.agent.value.trim()) els.agent.value = DEFAULT_AGENT;
  });

  // --- time -------------------------------------------------------------------------------

  function serverNow() {
    return Date.now() + state.clockOffset;
  }

  function duration(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
    if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
    return `${s}s`;
  }

  function clock(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function fullTime(iso) {
    return new Date(iso).toLocaleString();
  }

  // How long the conversation waited for an agent (still counting while it waits).
  function waited(conv) {
    const queued = Date.parse(conv.queued_at);
    const until = conv.accepted_at || conv.closed_at;
    return (until ? Date.parse(until) : serverNow()) - queued;
  }

  function waitLabel(conv) {
    if (conv.status === "waiting") return `Waiting ${duration(waited(conv))}`;
    if (conv.accepted_at) return `Waited ${duration(waited(conv))}`;
    return `Closed after ${duration(waited(conv))} in the queue`;
  }

  // --- queue ------------------------------------------------------------------------------

  function applySnapshot(snapshot) {
    state.clockOffset = Date.parse(snapshot.server_time) - Date.now();
    state.conversations = new Map(snapshot.conversations.map((c) => [c.sid, c]));
    state.order = snapshot.conversations.map((c) => c.sid);
    renderQueue();
    if (state.selected) {
      const conv = state.conversations.get(state.selected);
      if (!conv) {
        showGone();
      } else if (!state.shown || state.shown.sid !== conv.sid || state.shown.key !== changeKey(conv)) {
        loadTranscript(conv.sid);
      } else {
        renderConversation();
      }
    }
  }

  function changeKey(conv) {
    return [conv.status, conv.agent, conv.message_count].join("|");
  }

  const queueItems = new Map(); // sid -> { li, button, parts }

  function renderQueue() {
    const open = [...state.conversations.values()].filter((c) => c.status !== "closed").length;
    els.queueCount.textContent = `${open} open`;
    els.queueEmpty.hidden = state.order.length > 0;

    for (const [sid, item] of queueItems) {
      if (!state.conversations.has(sid)) {
        item.li.remove();
        queueItems.delete(sid);
      }
    }
    state.order.forEach((sid) => {
      let item = queueItems.get(sid);
      if (!item) {
        item = createQueueItem(sid);
        queueItems.set(sid, item);
      }
      updateQueueItem(item, state.conversations.get(sid));
    });

    // Reorder only when the order changed, so a focused item keeps its focus.
    const current = [...els.queueList.children].map((li) => li.dataset.sid);
    if (current.join() !== state.order.join()) {
      const focused = document.activeElement;
      state.order.forEach((sid) => els.queueList.appendChild(queueItems.get(sid).li));
      if (focused && focused !== document.activeElement && document.contains(focused)) {
        focused.focus();
      }
    }
  }

  function createQueueItem(sid) {
    const li = el("li");
    li.dataset.sid = sid;
    const button = el("button", "queue-item");
    button.type = "button";
    button.dataset.sid = sid;
    const top = el("span", "queue-item-top");
    const user = el("span", "queue-user");
    const badge = el("span", "badge");
    top.append(user, badge);
    const latest = el("span", "queue-latest");
    const latestAuthor = el("span", "queue-latest-author");
    const latestBody = el("span", "queue-latest-body");
    latest.append(latestAuthor, latestBody);
    const meta = el("span", "queue-meta");
    button.append(top, latest, meta);
    button.addEventListener("click", () => select(sid, { focusChat: NARROW.matches }));
    li.append(button);
    return { li, button, parts: { user, badge, latestAuthor, latestBody, meta } };
  }

  function updateQueueItem(item, conv) {
    const { user, badge, latestAuthor, latestBody, meta } = item.parts;
    item.button.dataset.status = conv.status;
    item.button.setAttribute("aria-current", String(conv.sid === state.selected));
    user.textContent = `User ${conv.user || "unknown"}`;
    badge.dataset.status = conv.status;
    badge.textContent = conv.status_label;
    if (conv.latest) {
      // The user's own words need no name: the item is headed with it.
      latestAuthor.textContent = conv.latest.role === "user" ? "" : `${conv.latest.author}: `;
      latestBody.textContent = conv.latest.body;
    } else {
      latestAuthor.textContent = "";
      latestBody.textContent = "No messages yet";
    }
    meta.textContent = queueMeta(conv);
  }

  function queueMeta(conv) {
    const parts = [waitLabel(conv)];
    if (conv.agent) parts.push(conv.agent);
    if (conv.latest) parts.push(`last message ${clock(conv.latest.sent_at)}`);
    return parts.join(" · ");
  }

  // --- the open conversation --------------------------------------------------------------

  function select(sid, { focusChat = false, updateHash = true } = {}) {
    if (state.selected !== sid) {
      state.selected = sid;
      state.shown = null;
      els.transcript.replaceChildren();
      els.reply.value = "";
      hideError();
    }
    if (updateHash) history.replaceState(null, "", `#${encodeURIComponent(sid)}`);
    for (const [itemSid, item] of queueItems) {
      item.button.setAttribute("aria-current", String(itemSid === sid));
    }
    els.layout.dataset.view = "chat";
    els.chatEmpty.hidden = true;
    els.chatView.hidden = false;
    renderConversation();
    loadTranscript(sid);
    if (focusChat) els.chatTitle.focus();
  }

  function backToQueue() {
    const sid = state.selected;
    els.layout.dataset.view = "queue";
    const item = sid && queueItems.get(sid);
    if (item) item.button.focus();
  }

  async function loadTranscript(sid) {
    const request = ++state.transcriptRequest;
    let data;
    try {
      data = await api("GET", `/conversations/${encodeURIComponent(sid)}`);
    } catch (error) {
      if (request !== state.transcriptRequest || sid !== state.selected) return;
      if (error.status === 404) showGone();
      else showError(error.message);
      return;
    }
    if (request !== state.transcriptRequest || sid !== state.selected) return;
    state.conversations.set(sid, data.conversation);
    renderTranscript(sid, data.messages);
    state.shown.key = changeKey(data.conversation);
    renderConversation();
  }

  function renderTranscript(sid, messages) {
    const box = els.transcript;
    if (!state.shown || state.shown.sid !== sid) {
      box.replaceChildren();
      state.shown = { sid, lastIndex: -1, key: null };
    }
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
    const fresh = messages.filter((m) => m.index > state.shown.lastIndex);
    const end = box.querySelector(".transcript-end");
    for (const message of fresh) {
      box.insertBefore(messageItem(message), end);
      state.shown.lastIndex = message.index;
    }
    if (fresh.length && (nearBottom || fresh.length === messages.length)) {
      box.scrollTop = box.scrollHeight;
    }
  }

  function messageItem(message) {
    const li = el("li", "message");
    li.dataset.role = message.role;
    li.dataset.index = String(message.index);
    const head = el("div", "message-head");
    const author = el("span", "message-author", message.author);
    const time = el("time", "message-time", clock(message.sent_at));
    time.dateTime = message.sent_at;
    time.title = fullTime(message.sent_at);
    head.append(author, time);
    const body = el("p", "message-body", message.body);
    li.append(head, body);
    return li;
  }

  function renderConversation() {
    const conv = state.selected && state.conversations.get(state.selected);
    if (!conv) return;
    const me = agentName();
    const mine = conv.status === "assigned" && conv.agent === me;
    els.chatTitle.textContent = `User ${conv.user || "unknown"}`;
    els.chatStatus.dataset.status = conv.status;
    els.chatStatus.textContent = conv.status === "assigned" ? `with ${conv.agent}` : conv.status_label;
    els.chatMeta.textContent = `${waitLabel(conv)} · queued ${clock(conv.queued_at)}`;

    els.accept.hidden = conv.status === "closed" || mine;
    els.accept.disabled = state.busy || conv.status === "assigned";
    els.accept.textContent = conv.status === "assigned" ? `With ${conv.agent}` : "Accept";
    els.end.hidden = conv.status === "closed";
    els.end.disabled = state.busy;

    const canReply = mine;
    els.reply.disabled = !canReply;
    els.send.disabled = !canReply || state.busy;
    if (conv.status === "closed") {
      els.hint.textContent = "This conversation is closed.";
    } else if (conv.status === "waiting") {
      els.hint.textContent = `Accept the conversation to reply as ${me}.`;
    } else if (!mine) {
      els.hint.textContent = `This conversation is with ${conv.agent}. Use that agent name to reply.`;
    } else {
      els.hint.textContent = "Enter to send · Shift+Enter for a new line";
    }

    let end = els.transcript.querySelector(".transcript-end");
    if (conv.status === "closed" && !end) {
      end = el("li", "transcript-end", "Conversation closed");
      els.transcript.append(end);
    } else if (conv.status !== "closed" && end) {
      end.remove();
    }
  }

  function showGone() {
    els.chatTitle.textContent = "Conversation not found";
    els.chatStatus.textContent = "";
    els.chatMeta.textContent = "";
    els.accept.hidden = true;
    els.end.hidden = true;
    els.reply.disabled = true;
    els.send.disabled = true;
    els.hint.textContent = "This conversation no longer exists.";
    els.transcript.replaceChildren();
    state.shown = null;
  }

  function showError(message) {
    els.chatError.textContent = message;
    els.chatError.hidden = false;
  }

  function hideError() {
    els.chatError.hidden = true;
    els.chatError.textContent = "";
  }

  // --- actions ----------------------------------------------------------------------------

  async function act(path, body, after) {
    const sid = state.selected;
    if (!sid || state.busy) return;
    state.busy = true;
    hideError();
    renderConversation();
    try {
      await api("POST", `/conversations/${encodeURIComponent(sid)}/${path}`, body);
      if (after) after();
    } catch (error) {
      showError(error.message);
    } finally {
      state.busy = false;
      renderConversation();
      if (sid === state.selected) loadTranscript(sid);
    }
  }

  els.accept.addEventListener("click", () =>
    act("accept", { agent: agentName() }, () => {
      const conv = state.conversations.get(state.selected);
      if (conv) Object.assign(conv, { status: "assigned", agent: agentName() });
      renderConversation();
      els.reply.focus();
    }),
  );

  els.end.addEventListener("click", () => act("end", { agent: agentName() }));

  els.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = els.reply.value;
    if (!text.trim()) {
      showError("Write a reply before sending it.");
      return;
    }
    act("reply", { agent: agentName(), body: text }, () => {
      els.reply.value = "";
      els.reply.focus();
    });
  });

  els.reply.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      els.composer.requestSubmit();
    }
  });

  els.back.addEventListener("click", backToQueue);

  async function api(method, path, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, options);
    } catch {
      throw Object.assign(new Error("The sandbox is not reachable."), { status: 0 });
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = (data.error && data.error.message) || `Request failed (${response.status}).`;
      throw Object.assign(new Error(message), { status: response.status });
    }
    return data;
  }

  // --- live updates -----------------------------------------------------------------------

  // The server ends each event stream after a few seconds; reconnect at once after a stream
  // that worked, and back off while the sandbox is down.
  let source = null;
  let failures = 0;
  let reconnectTimer = null;

  function connect() {
    reconnectTimer = null;
    source = new EventSource(`${API}/events`);
    let received = false;
    source.addEventListener("queue", (event) => {
      received = true;
      failures = 0;
      setConnection("live", "Live");
      applySnapshot(JSON.parse(event.data));
    });
    source.addEventListener("error", () => {
      source.close();
      source = null;
      if (received) {
        scheduleReconnect(100);
      } else {
        failures += 1;
        if (failures > 1) setConnection("offline", "Reconnecting…");
        scheduleReconnect(Math.min(5000, 250 * 2 ** failures));
      }
    });
  }

  function scheduleReconnect(delay) {
    if (reconnectTimer === null) reconnectTimer = window.setTimeout(connect, delay);
  }

  function setConnection(stateName, text) {
    if (els.connection.dataset.state === stateName) return;
    els.connection.dataset.state = stateName;
    els.connectionText.textContent = text;
  }

  // Waiting times count up between updates.
  window.setInterval(() => {
    for (const [sid, item] of queueItems) {
      const conv = state.conversations.get(sid);
      if (conv) item.parts.meta.textContent = queueMeta(conv);
    }
    const conv = state.selected && state.conversations.get(state.selected);
    if (conv) els.chatMeta.textContent = `${waitLabel(conv)} · queued ${clock(conv.queued_at)}`;
  }, 1000);

  window.addEventListener("hashchange", () => {
    const sid = decodeURIComponent(location.hash.slice(1));
    if (sid && sid !== state.selected) select(sid, { updateHash: false });
  });

  const initial = decodeURIComponent(location.hash.slice(1));
  if (initial) select(initial, { updateHash: false });
  connect();
})();
