// Agent console: the sandbox's Flex agent desktop.
//
// All text from conversations is put on the page with textContent, never parsed as HTML.
// The signed-in agent is kept per tab (sessionStorage), so each tab can be another agent.
"use strict";

(() => {
  const API = "/sandbox/console";
  const DEFAULT_AGENT = "agent.alex";
  const LAST_NAME_KEY = "flexBridge.console.agentName"; // the last name used, any tab
  const SESSION_KEY = "flexBridge.console.agent"; // this tab's agent: { sid, name }
  const NARROW = window.matchMedia("(max-width: 760px)");

  const els = {
    connection: byId("connection"),
    connectionText: byId("connection-text"),
    signIn: byId("sign-in"),
    agent: byId("agent-name"),
    agentBar: byId("agent-bar"),
    agentLabel: byId("agent-label"),
    activity: byId("activity"),
    signOut: byId("sign-out"),
    deskError: byId("desk-error"),
    hours: byId("hours"),
    offersBox: byId("offers-box"),
    offers: byId("offers"),
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
    reject: byId("reject"),
    end: byId("end"),
    complete: byId("complete"),
    transcript: byId("transcript"),
    composer: byId("composer"),
    reply: byId("reply"),
    send: byId("send"),
    hint: byId("composer-hint"),
  };

  const state = {
    me: null, // { sid, name } of this tab's agent, once signed in
    conversations: new Map(), // sid -> summary, from the latest desk snapshot
    order: [],
    agents: new Map(), // worker sid -> { sid, name, activity }
    offers: [], // open offers (pending reservations), every agent's
    hours: null, // { open, opens_at } when the bridge keeps business hours
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

  // --- signing in -----------------------------------------------------------------------

  function remembered(storage, key) {
    try {
      return storage.getItem(key);
    } catch {
      return null; // storage may be unavailable (private mode)
    }
  }

  function remember(storage, key, value) {
    try {
      if (value === null) storage.removeItem(key);
      else storage.setItem(key, value);
    } catch {
      // The agent still works for this page.
    }
  }

  async function signIn(name) {
    hideDeskError();
    let data;
    try {
      data = await api("POST", "/agents", { name });
    } catch (error) {
      showDeskError(error.message);
      return;
    }
    state.me = { sid: data.agent.sid, name: data.agent.name };
    remember(window.sessionStorage, SESSION_KEY, JSON.stringify(state.me));
    remember(window.localStorage, LAST_NAME_KEY, data.agent.name);
    state.agents.set(data.agent.sid, data.agent);
    renderAgent();
    renderDesk();
  }

  function signOut() {
    const me = state.me;
    state.me = null;
    remember(window.sessionStorage, SESSION_KEY, null);
    renderAgent();
    renderDesk();
    // As Flex does at log-out: the agent goes Offline (open offers pass to others).
    if (me) api("POST", `/agents/${me.sid}/activity`, { activity: "Offline" }).catch(() => {});
    els.agent.focus();
  }

  function renderAgent() {
    const me = state.me;
    els.signIn.hidden = Boolean(me);
    els.agentBar.hidden = !me;
    if (!me) return;
    els.agentLabel.textContent = me.name;
    const known = state.agents.get(me.sid);
    if (known && document.activeElement !== els.activity) els.activity.value = known.activity;
  }

  els.agent.value = remembered(window.localStorage, LAST_NAME_KEY) || DEFAULT_AGENT;
  els.signIn.addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(els.agent.value.trim() || DEFAULT_AGENT);
  });
  els.signOut.addEventListener("click", signOut);
  els.activity.addEventListener("change", async () => {
    if (!state.me) return;
    hideDeskError();
    try {
      const data = await api("POST", `/agents/${state.me.sid}/activity`, {
        activity: els.activity.value,
      });
      state.agents.set(data.agent.sid, data.agent);
    } catch (error) {
      showDeskError(error.message);
      if (error.status === 404) signOut();
    }
    renderAgent();
  });

  function showDeskError(message) {
    els.deskError.textContent = message;
    els.deskError.hidden = false;
  }

  function hideDeskError() {
    els.deskError.hidden = true;
    els.deskError.textContent = "";
  }

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

  // --- the desk ---------------------------------------------------------------------------

  function applySnapshot(snapshot) {
    state.clockOffset = Date.parse(snapshot.server_time) - Date.now();
    state.conversations = new Map(snapshot.conversations.map((c) => [c.sid, c]));
    state.order = snapshot.conversations.map((c) => c.sid);
    state.agents = new Map(snapshot.agents.map((a) => [a.sid, a]));
    state.offers = snapshot.offers;
    state.hours = snapshot.hours;
    if (state.me && !state.agents.has(state.me.sid)) {
      // The sandbox restarted and forgot this agent: sign in again under the same name.
      const name = state.me.name;
      state.me = null;
      signIn(name);
    }
    renderAgent();
    renderDesk();
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

  // Outside business hours the bridge tells waiting users when the team opens; so does
  // the desk (until that time comes, even if nothing else changes meanwhile).
  function renderHours() {
    const hours = state.hours;
    const opensAt = hours && hours.opens_at ? Date.parse(hours.opens_at) : null;
    const closed = hours && !hours.open && (opensAt === null || serverNow() < opensAt);
    els.hours.hidden = !closed;
    if (closed) {
      els.hours.textContent = opensAt
        ? `Outside business hours: users are told the team opens ${fullTime(hours.opens_at)}.`
        : "Outside business hours: users are told the team is closed.";
    }
  }

  function renderDesk() {
    renderHours();
    renderOffers();
    renderQueue();
    renderConversation();
  }

  // This agent's open offer for a conversation, if any.
  function myOffer(sid) {
    if (!state.me) return null;
    return state.offers.find((o) => o.agent_sid === state.me.sid && o.conversation_sid === sid) || null;
  }

  const offerItems = new Map(); // reservation sid -> { li, parts }

  function renderOffers() {
    const mine = state.me ? state.offers.filter((o) => o.agent_sid === state.me.sid) : [];
    els.offersBox.hidden = mine.length === 0;
    const wanted = new Set(mine.map((o) => o.sid));
    for (const [sid, item] of offerItems) {
      if (!wanted.has(sid)) {
        item.li.remove();
        offerItems.delete(sid);
      }
    }
    for (const offer of mine) {
      let item = offerItems.get(offer.sid);
      if (!item) {
        item = createOfferItem(offer);
        offerItems.set(offer.sid, item);
        els.offers.append(item.li);
      }
      updateOfferItem(item, offer);
    }
  }

  function createOfferItem(offer) {
    const li = el("li", "offer");
    li.dataset.sid = offer.sid;
    li.dataset.conversation = offer.conversation_sid;
    const title = el("button", "offer-title");
    title.type = "button";
    title.addEventListener("click", () => select(offer.conversation_sid, { focusChat: NARROW.matches }));
    const latest = el("span", "offer-latest");
    const expires = el("span", "offer-expires");
    const actions = el("span", "offer-actions");
    const accept = el("button", "btn primary", "Accept");
    accept.type = "button";
    accept.addEventListener("click", () => answerOffer(offer.sid, offer.conversation_sid, "accept"));
    const reject = el("button", "btn ghost", "Reject");
    reject.type = "button";
    reject.addEventListener("click", () => answerOffer(offer.sid, offer.conversation_sid, "reject"));
    actions.append(accept, reject);
    li.append(title, latest, expires, actions);
    return { li, parts: { title, latest, expires, accept, reject } };
  }

  function updateOfferItem(item, offer) {
    const conv = state.conversations.get(offer.conversation_sid);
    item.parts.title.textContent = conv ? `User ${conv.user || "unknown"}` : "A conversation";
    item.parts.latest.textContent = conv && conv.latest ? conv.latest.body : "";
    item.parts.expires.textContent = expiresLabel(offer);
    item.parts.accept.setAttribute("aria-label", `Accept ${item.parts.title.textContent}`);
    item.parts.reject.setAttribute("aria-label", `Reject ${item.parts.title.textContent}`);
  }

  function expiresLabel(offer) {
    const left = Date.parse(offer.expires_at) - serverNow();
    return left > 0 ? `Offer ends in ${duration(left)}` : "Offer ending…";
  }

  async function answerOffer(reservation, sid, answer) {
    if (!state.me || state.busy) return;
    state.busy = true;
    hideDeskError();
    hideError();
    renderConversation();
    try {
      await api("POST", `/offers/${encodeURIComponent(reservation)}/${answer}`, { agent: state.me.sid });
      if (answer === "accept") {
        state.offers = state.offers.filter((o) => o.sid !== reservation);
        const conv = state.conversations.get(sid);
        if (conv) Object.assign(conv, { status: "assigned", agent: state.me.name, offered_to: null });
        select(sid, { focusChat: false });
        els.reply.focus();
      }
    } catch (error) {
      if (sid === state.selected) showError(error.message);
      else showDeskError(error.message);
    } finally {
      state.busy = false;
      renderDesk();
      if (sid === state.selected) {
        loadTranscript(sid);
        if (answer === "accept" && !els.reply.disabled) els.reply.focus();
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
    const parts = [];
    if (conv.position) parts.push(`#${conv.position} in ${conv.queue}`);
    parts.push(waitLabel(conv));
    if (conv.offered_to) parts.push(`offered to ${conv.offered_to}`);
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
    if (message.part) {
      // One long message the bridge posted in several parts: which part this is.
      head.append(el("span", "message-part", `part ${message.part}`));
    }
    const body = el("p", "message-body", message.body);
    li.append(head, body);
    return li;
  }

  function renderConversation() {
    const conv = state.selected && state.conversations.get(state.selected);
    if (!conv) return;
    const me = state.me;
    const mine = Boolean(me) && conv.agent === me.name;
    const offer = myOffer(conv.sid);
    els.chatTitle.textContent = `User ${conv.user || "unknown"}`;
    els.chatStatus.dataset.status = conv.status;
    els.chatStatus.textContent =
      conv.status === "assigned" ? `with ${conv.agent}` : conv.status === "wrapping" ? `${conv.agent} wrapping up` : conv.status_label;
    els.chatMeta.textContent = chatMeta(conv);

    els.accept.hidden = !offer;
    els.reject.hidden = !offer;
    els.accept.disabled = els.reject.disabled = state.busy;
    els.end.hidden = !(mine && conv.status === "assigned");
    els.end.disabled = state.busy;
    els.complete.hidden = !(mine && conv.status === "wrapping");
    els.complete.disabled = state.busy;

    const canReply = mine && conv.status === "assigned";
    els.reply.disabled = !canReply;
    els.send.disabled = !canReply || state.busy;
    els.hint.textContent = composerHint(conv, mine, offer);

    let end = els.transcript.querySelector(".transcript-end");
    const ended = conv.status === "closed" || conv.status === "wrapping";
    if (ended && !end) {
      end = el("li", "transcript-end", "Conversation closed");
      els.transcript.append(end);
      end.scrollIntoView({ block: "nearest" });
    } else if (!ended && end) {
      end.remove();
    }
  }

  function chatMeta(conv) {
    const parts = [waitLabel(conv), `queued ${clock(conv.queued_at)}`];
    if (conv.position) parts.unshift(`#${conv.position} in ${conv.queue}`);
    const offer = myOffer(conv.sid);
    if (offer) parts.push(expiresLabel(offer));
    else if (conv.offered_to) parts.push(`offered to ${conv.offered_to}`);
    return parts.join(" · ");
  }

  function composerHint(conv, mine, offer) {
    const me = state.me;
    if (conv.status === "closed") return "This conversation is closed.";
    if (conv.status === "wrapping") {
      return mine ? "The chat has ended: Complete the task when your notes are done." : `${conv.agent} is wrapping up.`;
    }
    if (!me) return "Sign in as an agent to take conversations.";
    if (offer) return "This conversation is offered to you: accept it to reply.";
    if (conv.status === "waiting") {
      const agent = state.agents.get(me.sid);
      if (agent && agent.activity !== "Available") return "Set yourself Available to be offered conversations.";
      return conv.offered_to ? `Offered to ${conv.offered_to}.` : "Waiting for an agent with room.";
    }
    if (!mine) return `This conversation is with ${conv.agent}.`;
    return "Enter to send · Shift+Enter for a new line";
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
    if (!sid || state.busy || !state.me) return;
    state.busy = true;
    hideError();
    renderConversation();
    try {
      await api("POST", `/conversations/${encodeURIComponent(sid)}/${path}`, { agent: state.me.sid, ...body });
      if (after) after();
    } catch (error) {
      showError(error.message);
    } finally {
      state.busy = false;
      renderConversation();
      if (sid === state.selected) loadTranscript(sid);
    }
  }

  function answerSelected(answer) {
    const offer = state.selected && myOffer(state.selected);
    if (offer) answerOffer(offer.sid, offer.conversation_sid, answer);
  }

  els.accept.addEventListener("click", () => answerSelected("accept"));
  els.reject.addEventListener("click", () => answerSelected("reject"));
  els.end.addEventListener("click", () => {
    // Ending cannot be undone: the user is told the agent ended the conversation.
    if (window.confirm("End this chat? The user is told you ended it, and their next message starts a new conversation.")) {
      act("end", {});
    }
  });
  els.complete.addEventListener("click", () => act("complete", {}));

  els.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = els.reply.value;
    if (!text.trim()) {
      showError("Write a reply before sending it.");
      return;
    }
    act("reply", { body: text }, () => {
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
    source.addEventListener("desk", (event) => {
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
    for (const offer of state.offers) {
      const item = offerItems.get(offer.sid);
      if (item) item.parts.expires.textContent = expiresLabel(offer);
    }
    const conv = state.selected && state.conversations.get(state.selected);
    if (conv) els.chatMeta.textContent = chatMeta(conv);
    renderHours();
  }, 1000);

  window.addEventListener("hashchange", () => {
    const sid = decodeURIComponent(location.hash.slice(1));
    if (sid && sid !== state.selected) select(sid, { updateHash: false });
  });

  const saved = remembered(window.sessionStorage, SESSION_KEY);
  if (saved) {
    try {
      const me = JSON.parse(saved);
      if (me && typeof me.name === "string") signIn(me.name);
    } catch {
      remember(window.sessionStorage, SESSION_KEY, null);
    }
  }
  renderAgent();

  const initial = decodeURIComponent(location.hash.slice(1));
  if (initial) select(initial, { updateHash: false });
  connect();
})();
