// Every call the console makes goes through here: the same public JSON API any client
// uses, with the service key from this tab's sessionStorage, and errors turned into
// the server's own message (`{"detail": ...}`).

const SERVICE_KEY = "ragstore.serviceKey";
const PROVIDER_KEY = "ragstore.providerKey";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// Asked for a key when the server answers 401; set by main.js. Resolves true when the
// user gave one (the request is then sent again), false when they cancelled.
let askForKey = async () => false;

export function onKeyNeeded(handler) {
  askForKey = handler;
}

export const keys = {
  get service() {
    return sessionStorage.getItem(SERVICE_KEY) || "";
  },
  get provider() {
    return sessionStorage.getItem(PROVIDER_KEY) || "";
  },
  save(service, provider) {
    store(SERVICE_KEY, service);
    store(PROVIDER_KEY, provider);
  },
};

function store(name, value) {
  if (value) {
    sessionStorage.setItem(name, value);
  } else {
    sessionStorage.removeItem(name);
  }
}

// The provider key, for the bodies of searches and chats that may carry one.
export function withProviderKey(body) {
  return keys.provider ? { ...body, api_key: keys.provider } : body;
}

async function send(path, { method = "GET", json, form, accept } = {}) {
  for (;;) {
    const headers = {};
    if (keys.service) headers.Authorization = `Bearer ${keys.service}`;
    if (accept) headers.Accept = accept;
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body });
    } catch (error) {
      throw new ApiError(0, `the server could not be reached (${error.message})`);
    }
    if (response.ok) return response;
    const detail = await errorDetail(response);
    if (response.status === 401 && (await askForKey(detail))) continue;
    throw new ApiError(response.status, detail);
  }
}

async function errorDetail(response) {
  const text = await response.text();
  try {
    const detail = JSON.parse(text).detail;
    if (typeof detail === "string") return detail;
    if (detail !== undefined) return JSON.stringify(detail);
  } catch {
    // Not JSON: a proxy's page, say. Show its status instead of its markup.
  }
  return `${response.status} ${response.statusText}`.trim();
}

export async function getJson(path) {
  return (await send(path)).json();
}

export async function sendJson(method, path, json) {
  const response = await send(path, { method, json });
  return response.status === 204 ? null : response.json();
}

export async function postForm(path, form) {
  return (await send(path, { method: "POST", form })).json();
}

// A server-sent event stream read with fetch (EventSource cannot send the key header):
// calls onEvent(name, data) for each event, data parsed from JSON; resolves at its end.
export async function streamEvents(path, { method = "GET", json } = {}, onEvent) {
  const response = await send(path, { method, json, accept: "text/event-stream" });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = parseEvent(block);
      if (event) onEvent(event.name, event.data);
    }
  }
}

function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  // Comments (`: ping`) carry no data.
  if (!data.length) return null;
  return { name, data: JSON.parse(data.join("\n")) };
}

export const path = {
  collections: "/api/collections",
  collection: (id) => `/api/collections/${encodeURIComponent(id)}`,
  documents: (id) => `/api/collections/${encodeURIComponent(id)}/documents`,
  document: (id, doc) => `/api/collections/${encodeURIComponent(id)}/documents/${doc}`,
  chunks: (id, doc) => `/api/collections/${encodeURIComponent(id)}/documents/${doc}/chunks`,
  retry: (id, doc) => `/api/collections/${encodeURIComponent(id)}/documents/${doc}/retry`,
  search: (id) => `/api/collections/${encodeURIComponent(id)}/search`,
  chat: (id) => `/api/collections/${encodeURIComponent(id)}/chat`,
  jobEvents: (job) => `/api/jobs/${job}/events`,
};
