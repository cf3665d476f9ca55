// The console's shell: hash routes to views, the key prompt, and the server's health.

import { ApiError, getJson, onKeyNeeded } from "./api.js";
import { askForKeys } from "./dialogs.js";
import { h, replace } from "./dom.js";
import * as chat from "./views/chat.js";
import * as chunks from "./views/chunks.js";
import * as collections from "./views/collections.js";
import * as documents from "./views/documents.js";
import * as search from "./views/search.js";

// The first matching route wins; groups are its parameters, decoded.
const ROUTES = [
  [/^\/collections\/([^/]+)\/documents\/([^/]+)$/, chunks, "collections"],
  [/^\/collections\/([^/]+)$/, documents, "collections"],
  [/^\/search$/, search, "search"],
  [/^\/chat$/, chat, "chat"],
  [/^\/?$/, collections, "collections"],
];

// Several requests may meet a 401 at once: they share one prompt.
let pendingPrompt = null;
onKeyNeeded((detail) => {
  pendingPrompt ??= askForKeys(`The server asks for a key: ${detail}`).finally(() => {
    pendingPrompt = null;
  });
  return pendingPrompt;
});

const view = document.getElementById("view");
let shown = 0;

async function show(navigation) {
  const [route, query = ""] = location.hash.replace(/^#/, "").split("?");
  const match = ROUTES.map(([pattern, module, nav]) => [route.match(pattern), module, nav]).find(
    ([found]) => found,
  );
  const showing = ++shown;
  hideNotice();
  if (!match) {
    replace(view, "No such page.");
    return;
  }
  const [found, module, nav] = match;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const params = found.slice(1).map(decodeURIComponent);
  // Each showing renders into its own element: a slower earlier one (still awaiting the
  // server) then finishes in a detached element instead of beside the newer view.
  const content = h("div");
  replace(view, content);
  try {
    await module.render(content, params, new URLSearchParams(query));
    // After a link, keyboard and screen-reader users start at the new view (unless the
    // view focused something itself, as the chunk inspector does for a citation).
    if (navigation && showing === shown && !content.contains(document.activeElement)) view.focus();
  } catch (error) {
    if (showing === shown) showNotice(error);
  }
}

export function showNotice(error) {
  const notice = document.getElementById("notice");
  notice.textContent = error instanceof ApiError ? error.message : `Error: ${error.message}`;
  notice.hidden = false;
}

function hideNotice() {
  document.getElementById("notice").hidden = true;
}

async function showHealth() {
  const health = document.getElementById("health");
  try {
    const status = await getJson("/api/health");
    health.textContent =
      `${status.status} · ${status.embedding_model} (${status.embedding_dimensions} dimensions, ` +
      `${status.model}) · v${status.version}`;
    health.classList.remove("error");
  } catch (error) {
    health.textContent = `Server: ${error.message}`;
    health.classList.add("error");
  }
}

document.getElementById("keys-button").addEventListener("click", async () => {
  await askForKeys();
  show(false);
});
// A button's failed request (a delete, a retry) has no form to show it in.
window.addEventListener("unhandledrejection", (event) => showNotice(event.reason));
window.addEventListener("hashchange", () => show(true));
showHealth();
show(false);
