// The documents of a collection: status, size, chunks, metadata; uploads with live
// progress from each job's event stream; retry, delete and metadata edits.

import { getJson, path, postForm, sendJson, streamEvents } from "../api.js";
import { confirmDeletion } from "../dialogs.js";
import { chunkLink, formatBytes, formatTime, h, onSubmit, plural, replace, statusLine } from "../dom.js";

const PAGE_SIZE = 50;

export async function render(view, [collectionId]) {
  const collection = await getJson(path.collection(collectionId));
  const table = h("div", { class: "table-wrap" });
  const uploads = h("ul", { class: "uploads", "aria-label": "Uploads" });
  const state = { collectionId, offset: 0, table, uploads };
  const encoded = encodeURIComponent(collectionId);
  view.append(
    h("p", { class: "breadcrumbs" }, h("a", { href: "#/" }, "Collections"), " / ", collection.name),
    h("h1", {}, collection.name),
    h(
      "p",
      { class: "links" },
      h("a", { href: `#/search?collection=${encoded}` }, "Search this collection"),
      h("a", { href: `#/chat?collection=${encoded}` }, "Chat with it"),
    ),
    uploadPanel(state),
    uploads,
    h("h2", {}, "Documents"),
    table,
  );
  await refresh(state);
}

function uploadPanel(state) {
  const input = h("input", { id: "upload-files", type: "file", multiple: true, class: "visually-hidden" });
  const metadata = h("textarea", {
    id: "upload-metadata",
    rows: 2,
    placeholder: '{"product": "x200"}',
    "aria-describedby": "upload-metadata-hint",
  });
  const start = (files) => {
    for (const file of files) upload(state, file, metadata.value.trim());
  };
  input.addEventListener("change", () => {
    start([...input.files]);
    input.value = "";
  });
  const zone = h(
    "div",
    { class: "dropzone", id: "dropzone" },
    h("p", {}, "Drop files here, or "),
    h("label", { for: "upload-files", class: "button" }, "Choose files"),
    input,
  );
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    start([...event.dataTransfer.files]);
  });
  return h(
    "section",
    { class: "panel", "aria-labelledby": "upload-title" },
    h("h2", { id: "upload-title" }, "Upload"),
    zone,
    h("label", { for: "upload-metadata" }, "Metadata for these uploads (optional)"),
    metadata,
    h(
      "p",
      { class: "hint", id: "upload-metadata-hint" },
      "A JSON object kept with each document and on every chunk; filters can use its keys.",
    ),
  );
}

// One row of the upload list: the file's name, a progress bar and what happened.
function progressItem(uploads, filename) {
  const bar = h("progress", { max: 1, "aria-label": `Progress of ${filename}` });
  const text = h("span", { class: "upload-status" }, "uploading…");
  const item = h("li", { dataset: { state: "uploading" } }, h("span", { class: "filename" }, filename), bar, text);
  uploads.prepend(item);
  return {
    show(state, message, fraction) {
      item.dataset.state = state;
      text.textContent = message;
      if (fraction === undefined) bar.removeAttribute("value");
      else bar.value = fraction;
    },
  };
}

async function upload(state, file, metadata) {
  const item = progressItem(state.uploads, file.name);
  const form = new FormData();
  form.append("file", file);
  if (metadata) form.append("metadata", metadata);
  try {
    const stored = await postForm(`${path.documents(state.collectionId)}?wait=false`, form);
    if (stored.job_id) await follow(stored.job_id, item);
    else item.show(stored.status, `${stored.status}: already processed`, 1);
  } catch (error) {
    item.show("refused", `refused: ${error.message}`, 0);
  }
  await refresh(state);
}

// Follows a job's event stream until it ends (succeeded, failed, cancelled, superseded).
async function follow(jobId, item) {
  item.show("queued", "queued", 0);
  await streamEvents(path.jobEvents(jobId), {}, (event, job) => {
    if (event === "succeeded") {
      item.show("completed", `completed: ${plural(job.chunks_stored, "chunk")}`, 1);
    } else if (event === "failed") {
      item.show("failed", `failed: ${job.error}`, 0);
    } else if (event === "progress") {
      item.show(job.state, describeProgress(job), fraction(job));
    } else {
      item.show(event, event, 0);
    }
  });
}

function describeProgress(job) {
  if (job.state === "queued") return "queued";
  const made = job.chunks_made;
  return `${job.state}: ${job.units_parsed} parts parsed, ${job.chunks_embedded}/${made} embedded, ${job.chunks_stored}/${made} stored`;
}

function fraction(job) {
  return job.chunks_made ? (job.chunks_embedded + job.chunks_stored) / (2 * job.chunks_made) : 0;
}

async function refresh(state) {
  const page = await getJson(`${path.documents(state.collectionId)}?limit=${PAGE_SIZE}&offset=${state.offset}`);
  if (!page.total) {
    replace(state.table, h("p", {}, "No documents yet: upload some above."));
    return;
  }
  const changed = () => refresh(state);
  replace(
    state.table,
    h(
      "table",
      {},
      h("caption", {}, plural(page.total, "document")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["File", "Status", "Size", "Chunks", "Metadata", "Added", "Actions"].map((title) =>
            h("th", { scope: "col" }, title),
          ),
        ),
      ),
      h("tbody", {}, page.data.map((stored) => row(state, stored, changed))),
    ),
    pager(state, page),
  );
}

function pager(state, page) {
  if (page.total <= PAGE_SIZE) return null;
  const move = (offset) => () => {
    state.offset = offset;
    refresh(state);
  };
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages of documents" },
    h("button", { type: "button", class: "secondary", disabled: state.offset === 0, onclick: move(Math.max(0, state.offset - PAGE_SIZE)) }, "Previous"),
    ` ${state.offset + 1}–${Math.min(state.offset + PAGE_SIZE, page.total)} of ${page.total} `,
    h("button", { type: "button", class: "secondary", disabled: state.offset + PAGE_SIZE >= page.total, onclick: move(state.offset + PAGE_SIZE) }, "Next"),
  );
}

function row(state, stored, changed) {
  const { collectionId } = state;
  const metadataCell = h("td", { "data-label": "Metadata" }, metadataView(stored.metadata));
  const name = stored.filename;
  const actions = [
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        "aria-label": `Edit the metadata of ${name}`,
        onclick: () => replace(metadataCell, metadataForm(collectionId, stored, changed)),
      },
      "Edit metadata",
    ),
  ];
  if (stored.status === "failed" && stored.retryable !== false) {
    actions.push(
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          "aria-label": `Retry ${name}`,
          onclick: async () => {
            const job = await sendJson("POST", path.retry(collectionId, stored.id));
            const item = progressItem(state.uploads, `${name} (retry)`);
            await changed();
            await follow(job.id, item);
            await changed();
          },
        },
        "Retry",
      ),
    );
  }
  actions.push(
    h(
      "button",
      {
        type: "button",
        class: "danger",
        "aria-label": `Delete ${name}`,
        onclick: async () => {
          if (!(await confirmDeletion(`Delete ${name}, its chunks and vectors? This cannot be undone.`))) return;
          await sendJson("DELETE", path.document(collectionId, stored.id));
          await changed();
        },
      },
      "Delete",
    ),
  );
  return h(
    "tr",
    { dataset: { document: stored.id } },
    h("td", { "data-label": "File" }, h("a", { href: chunkLink(collectionId, stored.id) }, name)),
    h(
      "td",
      { "data-label": "Status" },
      h("span", { class: `badge ${stored.status}` }, stored.status),
      stored.error ? h("p", { class: "error" }, stored.error) : null,
    ),
    h("td", { class: "number", "data-label": "Size" }, formatBytes(stored.size_bytes)),
    h("td", { class: "number", "data-label": "Chunks" }, stored.chunk_count),
    metadataCell,
    h("td", { "data-label": "Added" }, formatTime(stored.created_at)),
    h("td", { class: "actions" }, actions),
  );
}

function metadataView(metadata) {
  return Object.keys(metadata).length ? h("code", { class: "metadata" }, JSON.stringify(metadata)) : "—";
}

function metadataForm(collectionId, stored, changed) {
  const inputId = `metadata-${stored.id}`;
  const status = statusLine(`${inputId}-status`);
  const form = h(
    "form",
    { class: "stacked-form" },
    h(
      "fieldset",
      {},
      h("label", { for: inputId }, `Metadata of ${stored.filename} (JSON object)`),
      h("textarea", { id: inputId, name: "metadata", rows: 4 }, JSON.stringify(stored.metadata, null, 2)),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit" }, "Save"),
        h("button", { type: "button", class: "secondary", onclick: changed }, "Cancel"),
      ),
    ),
    status,
  );
  onSubmit(form, status, async () => {
    let metadata;
    try {
      metadata = JSON.parse(form.elements.metadata.value || "{}");
    } catch (error) {
      throw new Error(`not JSON: ${error.message}`);
    }
    await sendJson("PATCH", path.document(collectionId, stored.id), { metadata });
    await changed();
  });
  return form;
}
