// Elements are built with createElement and text nodes, never from HTML strings, so
// a filename, a chunk or a model's answer can never run as markup.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

// A form's submit handler that keeps the page (and the CSP's form-action) out of it,
// shows the server's message in the form's own status line, and disables the form
// while the request runs.
export function onSubmit(form, status, handler) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fieldset = form.querySelector("fieldset");
    if (fieldset) fieldset.disabled = true;
    status.textContent = "";
    status.classList.remove("error");
    try {
      await handler(event);
    } catch (error) {
      status.textContent = error.message;
      status.classList.add("error");
    } finally {
      if (fieldset) fieldset.disabled = false;
    }
  });
}

export function statusLine(id) {
  return h("p", { class: "status", id, role: "status", "aria-live": "polite" });
}

export function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function formatTime(iso) {
  const time = new Date(iso);
  return h("time", { datetime: iso }, time.toLocaleString());
}

export function formatScore(value) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(3);
}

// The query's words marked in a text: a case-insensitive match of each word of two
// letters or more (the server stems; this only helps the eye).
export function highlighted(text, query) {
  const words = [...new Set(query.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) || [])];
  if (!words.length) return [text];
  const escaped = words.map((word) => word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(${escaped.join("|")})`, "giu");
  return text.split(pattern).map((part, index) => (index % 2 ? h("mark", {}, part) : part));
}

export function chunkLink(collectionId, documentId, chunkId) {
  const base = `#/collections/${encodeURIComponent(collectionId)}/documents/${documentId}`;
  return chunkId === undefined ? base : `${base}?chunk=${chunkId}`;
}
