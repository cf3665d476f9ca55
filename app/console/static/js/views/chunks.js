// The chunk inspector: a document's chunks in order, with page, section and rows, and
// the text as stored (what the model sees). `?chunk=ID` scrolls to one and marks it.

import { getJson, path } from "../api.js";
import { formatBytes, h, plural } from "../dom.js";

const PAGE_SIZE = 200;

export async function render(view, [collectionId, documentId], query) {
  const [collection, stored] = await Promise.all([
    getJson(path.collection(collectionId)),
    getJson(path.document(collectionId, documentId)),
  ]);
  const wanted = query.has("chunk") ? Number(query.get("chunk")) : null;
  const list = h("ol", { class: "chunks", "aria-label": `Chunks of ${stored.filename}` });
  const more = h("button", { type: "button", class: "secondary" }, "Load more chunks");
  const counter = h("p", { class: "hint", role: "status" });
  view.append(
    h(
      "p",
      { class: "breadcrumbs" },
      h("a", { href: "#/" }, "Collections"),
      " / ",
      h("a", { href: `#/collections/${encodeURIComponent(collectionId)}` }, collection.name),
      " / ",
      stored.filename,
    ),
    h("h1", {}, stored.filename),
    h(
      "p",
      {},
      h("span", { class: `badge ${stored.status}` }, stored.status),
      ` ${formatBytes(stored.size_bytes)} · ${plural(stored.chunk_count, "chunk")}`,
      stored.chunk_size ? ` of ${stored.chunk_size} characters (overlap ${stored.chunk_overlap})` : "",
    ),
    counter,
    list,
    more,
  );

  let offset = 0;
  let total = 0;
  const load = async () => {
    const page = await getJson(`${path.chunks(collectionId, documentId)}?limit=${PAGE_SIZE}&offset=${offset}`);
    list.append(...page.data.map((chunk) => chunkItem(chunk, chunk.id === wanted)));
    offset += page.data.length;
    total = page.total;
    counter.textContent = `Showing ${offset} of ${total} chunks.`;
    more.hidden = offset >= total;
  };
  more.addEventListener("click", load);
  await load();
  // A citation may point past the first page: load until it is shown.
  while (wanted !== null && !list.querySelector(".wanted") && offset < total) await load();
  const target = list.querySelector(".wanted");
  if (target) {
    target.scrollIntoView({ block: "center" });
    target.focus();
  }
}

function chunkItem(chunk, wanted) {
  const meta = chunk.metadata;
  const place = [
    meta.page !== undefined ? `page ${meta.page}${meta.page_end && meta.page_end !== meta.page ? `–${meta.page_end}` : ""}` : null,
    meta.section ? `section “${meta.section}”` : null,
    meta.sheet ? `sheet ${meta.sheet}` : null,
    meta.rows ? `rows ${meta.rows}` : null,
  ].filter(Boolean);
  return h(
    "li",
    {
      class: wanted ? "chunk wanted" : "chunk",
      id: `chunk-${chunk.id}`,
      tabindex: wanted ? -1 : null,
      dataset: { chunk: chunk.id },
    },
    h(
      "p",
      { class: "chunk-head" },
      h("strong", {}, `#${chunk.chunk_index}`),
      ` · chunk ${chunk.id}`,
      place.length ? ` · ${place.join(" · ")}` : "",
      ` · ${chunk.text.length} characters`,
    ),
    h("pre", { class: "chunk-text" }, chunk.text),
  );
}
