// Collections: the list with counts, create, rename and delete (after a confirmation).

import { getJson, path, sendJson } from "../api.js";
import { confirmDeletion } from "../dialogs.js";
import { formatTime, h, onSubmit, plural, replace, statusLine } from "../dom.js";

export async function render(view) {
  const list = h("div", { class: "table-wrap" });
  view.append(h("h1", {}, "Collections"), createForm(() => refresh(list)), list);
  await refresh(list);
}

function createForm(created) {
  const status = statusLine("create-status");
  const form = h(
    "form",
    { class: "inline-form", "aria-labelledby": "create-title" },
    h("h2", { id: "create-title" }, "New collection"),
    h(
      "fieldset",
      {},
      h("label", { for: "new-name" }, "Name"),
      h("input", { id: "new-name", name: "name", required: true, maxlength: 200 }),
      h("label", { for: "new-id" }, "Id (optional)"),
      h("input", { id: "new-id", name: "id", maxlength: 100 }),
      h("button", { type: "submit" }, "Create"),
    ),
    status,
  );
  onSubmit(form, status, async () => {
    const name = form.elements.name.value.trim();
    const id = form.elements.id.value.trim();
    const collection = await sendJson("POST", path.collections, id ? { name, id } : { name });
    form.reset();
    status.textContent = `Created ${collection.name} (${collection.id}).`;
    await created();
  });
  return form;
}

async function refresh(list) {
  const page = await getJson(`${path.collections}?limit=1000`);
  if (!page.data.length) {
    replace(list, h("p", {}, "No collections yet: create one above."));
    return;
  }
  replace(
    list,
    h(
      "table",
      {},
      h("caption", {}, plural(page.total, "collection")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Name", "Id", "Documents", "Chunks", "Created", "Actions"].map((title) =>
            h("th", { scope: "col" }, title),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        page.data.map((collection) => row(collection, () => refresh(list))),
      ),
    ),
  );
}

function row(collection, changed) {
  const name = h(
    "a",
    { href: `#/collections/${encodeURIComponent(collection.id)}` },
    collection.name,
  );
  const nameCell = h("td", { "data-label": "Name" }, name);
  const rename = h(
    "button",
    {
      type: "button",
      class: "secondary",
      "aria-label": `Rename ${collection.name}`,
      onclick: () => replace(nameCell, renameForm(collection, changed)),
    },
    "Rename",
  );
  const remove = h(
    "button",
    {
      type: "button",
      class: "danger",
      "aria-label": `Delete ${collection.name}`,
      onclick: async () => {
        const documents = plural(collection.document_count, "document");
        if (!(await confirmDeletion(`Delete the collection ${collection.name} and its ${documents}? This cannot be undone.`))) {
          return;
        }
        await sendJson("DELETE", path.collection(collection.id));
        await changed();
      },
    },
    "Delete",
  );
  return h(
    "tr",
    { dataset: { collection: collection.id } },
    nameCell,
    h("td", { "data-label": "Id" }, h("code", {}, collection.id)),
    h("td", { class: "number", "data-label": "Documents" }, collection.document_count),
    h("td", { class: "number", "data-label": "Chunks" }, collection.chunk_count),
    h("td", { "data-label": "Created" }, formatTime(collection.created_at)),
    h("td", { class: "actions" }, rename, remove),
  );
}

function renameForm(collection, changed) {
  const inputId = `rename-${collection.id}`;
  const status = statusLine(`${inputId}-status`);
  const form = h(
    "form",
    { class: "inline-form compact" },
    h(
      "fieldset",
      {},
      h("label", { for: inputId }, `New name for ${collection.name}`),
      h("input", { id: inputId, name: "name", value: collection.name, required: true, maxlength: 200 }),
      h("button", { type: "submit" }, "Save"),
    ),
    status,
  );
  onSubmit(form, status, async () => {
    await sendJson("PATCH", path.collection(collection.id), { name: form.elements.name.value.trim() });
    await changed();
  });
  queueMicrotask(() => form.elements.name.select());
  return form;
}
