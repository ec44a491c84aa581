// Shared by every page: the API key, calls to the API, readable errors, DOM helpers and the header.
// Everything from a user or a model goes into the page as text (textContent), never as HTML.

const KEY = "aitbc.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

// An API error as a sentence a person can act on.
export class ApiError extends Error {
  constructor(status, body) {
    super(readable(status, body));
    this.status = status;
    this.code = (body && body.error_code) || "";
    this.body = body;
  }
}

const WORDS = {
  401: "The API key was not accepted. Sign in again with a valid key.",
  402: "Insufficient funds: the account cannot cover this job's maximum cost.",
  403: "This key is not allowed to do that.",
  429: "Too many requests: please wait a moment and try again.",
  503: "The service is unavailable right now.",
};

export function readable(status, body) {
  const detail = body && typeof body.detail === "string" ? body.detail : "";
  const code = body && body.error_code;
  if (code === "INSUFFICIENT_FUNDS" || status === 402) {
    return `Insufficient funds: ${detail || "the account cannot cover this job's maximum cost"}.`.replace("..", ".");
  }
  if (code === "NO_ELIGIBLE_MINER") return `No miner can run this job now: ${detail}.`.replace("..", ".");
  if (status === 429) return WORDS[429];
  if (detail) return `${detail.charAt(0).toUpperCase()}${detail.slice(1)}${detail.endsWith(".") ? "" : "."}`;
  return WORDS[status] || `The request failed (HTTP ${status}).`;
}

// Calls the API; JSON in and out. Sends the key when there is one and `auth` is not false.
export async function api(path, { method = "GET", body, auth = true, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (auth && apiKey()) headers["X-Api-Key"] = apiKey();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { detail: "the gateway cannot be reached; check that it is running" });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Reads an SSE stream with fetch (EventSource cannot send the key in a header); calls onEvent(data, event).
// Resolves when the stream ends; an in-band `error` event rejects with an ApiError.
export async function sse(path, onEvent, { signal } = {}) {
  const headers = { Accept: "text/event-stream" };
  if (apiKey()) headers["X-Api-Key"] = apiKey();
  const response = await fetch(path, { headers, signal });
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    throw new ApiError(response.status, body);
  }
  if (response.status === 204 || !response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      let event = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue;
      const parsed = JSON.parse(data.join("\n"));
      if (event === "end") return;
      if (event === "error") throw new ApiError(parsed.status || 500, parsed);
      onEvent(parsed, event);
    }
  }
}

// el("p", {class: "x"}, "text", child): an element; strings become text nodes.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function show(container, ...children) {
  container.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined));
}

export function errorBox(error) {
  return el("p", { class: "error", role: "alert" }, error instanceof Error ? error.message : String(error));
}

// µcr (1 credit = 1,000,000 µcr) as credits.
export function credits(micro) {
  const value = Number(micro || 0) / 1e6;
  return `${value.toLocaleString("en", { maximumFractionDigits: 6 })} cr`;
}

export function when(time) {
  if (!time) return "";
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? String(time) : date.toLocaleString();
}

export function short(hash, size = 12) {
  return hash && hash.length > size ? `${hash.slice(0, size)}…` : hash || "";
}

// The header on every page: navigation, and sign-in by pasting a key (kept in this tab's sessionStorage).
export function header(onChange = () => {}) {
  const slot = document.getElementById("account");
  const render = () => {
    if (apiKey()) {
      const who = el("span", { id: "signed-in" }, "Signed in");
      api("/v1/account")
        .then((data) => {
          who.textContent = `Signed in: ${short(data.address, 14)} · ${credits(data.available)} available`;
        })
        .catch((error) => {
          who.textContent = error.message;
          who.className = "error";
        });
      show(
        slot,
        who,
        el("button", { type: "button", id: "sign-out", onclick: () => { setApiKey(""); render(); onChange(); } }, "Sign out"),
      );
    } else {
      const input = el("input", { id: "api-key", type: "password", autocomplete: "off", placeholder: "API key", "aria-label": "API key", required: true });
      const message = el("span", { class: "error", role: "alert" });
      const form = el(
        "form",
        {
          id: "sign-in",
          onsubmit: async (event) => {
            event.preventDefault();
            const key = input.value.trim();
            setApiKey(key);
            try {
              await api("/v1/account");
            } catch (error) {
              setApiKey("");
              message.textContent = error.status === 401 ? WORDS[401] : error.message;
              return;
            }
            render();
            onChange();
          },
        },
        input,
        el("button", { type: "submit" }, "Sign in"),
        message,
      );
      show(slot, form);
    }
  };
  render();
}
