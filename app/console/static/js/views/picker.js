// A labelled select of the collections, for the views that work on one.

import { getJson, path } from "../api.js";
import { h, plural } from "../dom.js";

export async function collectionPicker(id, selected, allowNone) {
  const page = await getJson(`${path.collections}?limit=1000`);
  const select = h(
    "select",
    { id, name: "collection", required: !allowNone },
    allowNone ? h("option", { value: "" }, "None: plain chat") : null,
    page.data.map((collection) =>
      h(
        "option",
        { value: collection.id, selected: collection.id === selected },
        `${collection.name} (${plural(collection.chunk_count, "chunk")})`,
      ),
    ),
  );
  const field = h("div", {}, h("label", { for: id }, "Collection"), select);
  return { field, select };
}
