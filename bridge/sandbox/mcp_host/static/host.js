// The sandbox assistant: an MCP host built on the official MCP Apps host (AppBridge) and
// MCP client. It plays the model (what you type goes to request_human_agent) and shows
// each tool call's ui:// resource in a sandboxed iframe, as ChatGPT or Claude would.
import {
  AppBridge,
  Client,
  PostMessageTransport,
  RESOURCE_MIME_TYPE,
  StreamableHTTPClientTransport,
  getToolUiResourceUri,
} from "./host-bundle.js";

const HOST = { name: "flex-bridge-sandbox-assistant", version: "1" };
const TOOL = "request_human_agent";
const $ = (id) => document.getElementById(id);

// What the browser tests read.
const harness = (window.harness = {
  ready: false, events: [], modelContext: null, toolResults: [], refused: [],
});

let client;
let tools = [];
const panes = []; // { bridge, iframe, context }: every pane stays, as hosts keep them

// The spec's default policy for a view, widened only by the domains the resource declares.
function policyFor(csp = {}) {
  const list = (key) => (csp[key] || []).join(" ");
  return [
    "default-src 'none'",
    `script-src 'self' 'unsafe-inline' ${list("resourceDomains")}`,
    `style-src 'self' 'unsafe-inline' ${list("resourceDomains")}`,
    `img-src 'self' data: ${list("resourceDomains")}`,
    `font-src 'self' ${list("resourceDomains")}`,
    `media-src 'self' data: ${list("resourceDomains")}`,
    `connect-src ${list("connectDomains") || "'none'"}`,
    `frame-src ${list("frameDomains") || "'none'"}`,
    "object-src 'none'",
    `base-uri ${list("baseUriDomains") || "'self'"}`,
  ].join("; ");
}

// ?styles=none: a host that gives the pane no style variables (its own fallbacks show).
const plainStyles = new URLSearchParams(location.search).get("styles") === "none";

function theme() {
  return $("theme").value;
}

function hostContext(tool) {
  const dark = theme() === "dark";
  return {
    theme: theme(),
    displayMode: "inline",
    availableDisplayModes: ["inline"],
    platform: "web",
    locale: navigator.language || "en-US",
    containerDimensions: { maxHeight: 640 },
    styles: {
      variables: plainStyles ? {} : {
        "--color-background-primary": dark ? "#1f1f1f" : "#ffffff",
        "--color-background-secondary": dark ? "#2a2a2a" : "#f3f4f6",
        "--color-text-primary": dark ? "#f1f1f1" : "#1a2230",
        "--color-text-secondary": dark ? "#a0a0a0" : "#5b6676",
        "--color-border-primary": dark ? "#3a3a3a" : "#dde3ea",
        "--font-sans": "system-ui, sans-serif",
      },
    },
    toolInfo: { tool },
  };
}

function turn(kind, text) {
  const li = document.createElement("li");
  li.className = kind;
  const said = document.createElement("div");
  said.className = "said";
  said.textContent = text;
  li.appendChild(said);
  $("turns").appendChild(li);
  return li;
}

async function showPane(tool, args, into) {
  const uri = getToolUiResourceUri(tool);
  if (!uri) return null;
  const { contents: [content] } = await client.readResource({ uri });
  if (!content || content.mimeType !== RESOURCE_MIME_TYPE) {
    throw new Error(`the resource is not an MCP App (${content && content.mimeType})`);
  }
  const ui = (content._meta && content._meta.ui) || {};
  const html = "text" in content ? content.text : atob(content.blob);
  const iframe = document.createElement("iframe");
  iframe.className = "pane";
  iframe.title = "Live chat with the support team";
  iframe.setAttribute("sandbox", "allow-scripts"); // an opaque origin: no access to this page
  into.appendChild(iframe);

  const capabilities = client.getServerCapabilities() || {};
  const context = hostContext(tool);
  const bridge = new AppBridge(
    client,
    HOST,
    {
      openLinks: {},
      serverTools: capabilities.tools,
      serverResources: capabilities.resources,
      logging: {},
      updateModelContext: { text: {}, structuredContent: {} },
      message: { text: {} },
    },
    { hostContext: context },
  );
  bridge.onsizechange = ({ height }) => {
    if (height !== undefined) iframe.style.height = `${Math.min(height, 640)}px`;
  };
  bridge.onupdatemodelcontext = async (params) => {
    harness.modelContext = params;
    const text = (params.content || []).map((block) => block.text || "").join("\n");
    $("model-context").textContent = text || JSON.stringify(params.structuredContent || {});
    return {};
  };
  bridge.onmessage = async (params) => {
    harness.events.push({ type: "message", params });
    return {};
  };
  bridge.onopenlink = async () => ({ isError: true });
  const initialized = new Promise((resolve) => bridge.addEventListener("initialized", resolve));

  const meta = `<meta http-equiv="Content-Security-Policy" content="${policyFor(ui.csp)}">`;
  iframe.srcdoc = html.replace("<head>", `<head>${meta}`);
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  // A host must refuse a view's call to a tool it may not call; AppBridge forwards all.
  const forward = bridge.oncalltool;
  bridge.oncalltool = async (params, extra) => {
    const known = tools.find((t) => t.name === params.name);
    const visibility = (known && known._meta && known._meta.ui && known._meta.ui.visibility) ||
      ["model", "app"];
    if (!known || !visibility.includes("app")) {
      harness.refused.push(params.name);
      throw new Error(`the pane may not call ${params.name}`);
    }
    return forward(params, extra);
  };
  await initialized;
  await bridge.sendToolInput({ arguments: args });
  return { bridge, iframe, context };
}

async function ask(message) {
  turn("user", message);
  const reply = turn("assistant", "Passing this to the support team…");
  const tool = tools.find((t) => t.name === TOOL);
  const args = { message };
  const calling = client.callTool({ name: TOOL, arguments: args }, { timeout: 120000 });
  const pane = await showPane(tool, args, reply);
  if (pane) panes.push(pane);
  const result = await calling;
  harness.toolResults.push(result);
  const text = (result.content || []).map((block) => block.text || "").join("\n");
  $("plain").textContent = text;
  reply.querySelector(".said").textContent = pane
    ? "I've passed your message to the support team. Talk to them here:"
    : text;
  if (pane) await pane.bridge.sendToolResult(result);
}

$("ask").addEventListener("submit", (event) => {
  event.preventDefault();
  const message = $("prompt").value.trim();
  if (!message) return;
  $("prompt").value = "";
  ask(message).catch((error) => {
    $("status").textContent = `Error: ${error.message}`;
  });
});

$("theme").addEventListener("change", () => {
  document.documentElement.dataset.theme = theme();
  for (const pane of panes) {
    pane.context = { ...pane.context, ...hostContext(pane.context.toolInfo.tool) };
    pane.bridge.setHostContext(pane.context);
  }
});

async function start() {
  const query = new URLSearchParams(location.search);
  if (query.get("theme") === "dark") $("theme").value = "dark";
  document.documentElement.dataset.theme = theme();
  client = new Client(HOST, {
    capabilities: {
      extensions: { "io.modelcontextprotocol/ui": { mimeTypes: [RESOURCE_MIME_TYPE] } },
    },
  });
  await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", location.href)));
  tools = (await client.listTools()).tools;
  harness.ready = true;
  $("status").textContent = "Connected to /mcp as one MCP session (one user).";
  const message = query.get("message");
  if (message) await ask(message);
}

start().catch((error) => {
  $("status").textContent = `Error: ${error.message}`;
});
