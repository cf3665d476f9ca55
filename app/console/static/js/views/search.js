// The search playground: mode, k, a filter builder (key, operator, value; and/or) and
// min_score; results with their scores, the query's words marked, and a link to each
// chunk in its document.

import { path, sendJson, withProviderKey } from "../api.js";
import { chunkLink, formatScore, h, highlighted, onSubmit, plural, replace, statusLine } from "../dom.js";
import { collectionPicker } from "./picker.js";

const OPERATORS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"];

export async function render(view, _params, query) {
  const picker = await collectionPicker("search-collection", query.get("collection"), false);
  const conditions = h("div", { class: "conditions", id: "conditions" });
  const combine = h(
    "select",
    { id: "filter-combine", name: "combine" },
    h("option", { value: "and" }, "all of (and)"),
    h("option", { value: "or" }, "any of (or)"),
  );
  const status = statusLine("search-status");
  const results = h("ol", { class: "results", "aria-label": "Results" });
  const form = h(
    "form",
    { class: "stacked-form", "aria-label": "Search" },
    h(
      "fieldset",
      {},
      h("label", { for: "search-query" }, "Question"),
      h("input", { id: "search-query", name: "query", required: true, maxlength: 4000, type: "search" }),
      h(
        "div",
        { class: "row" },
        picker.field,
        h(
          "div",
          {},
          h("label", { for: "search-mode" }, "Mode"),
          h(
            "select",
            { id: "search-mode", name: "mode" },
            ["hybrid", "vector", "keyword"].map((mode) => h("option", { value: mode }, mode)),
          ),
        ),
        h(
          "div",
          {},
          h("label", { for: "search-k" }, "Results (k)"),
          h("input", { id: "search-k", name: "k", type: "number", min: 1, max: 100, value: 4, required: true }),
        ),
        h(
          "div",
          {},
          h("label", { for: "search-min-score" }, "Minimum score (optional)"),
          h("input", { id: "search-min-score", name: "min_score", type: "number", step: "any" }),
        ),
      ),
      h(
        "fieldset",
        { class: "filters" },
        h("legend", {}, "Filters on metadata"),
        h("label", { for: "filter-combine" }, "Match"),
        combine,
        h(
          "p",
          { class: "hint", id: "filter-value-hint" },
          'A value is read as JSON when it parses (3, true, "3"), else as text; in and nin take a comma-separated list.',
        ),
        conditions,
        h(
          "button",
          { type: "button", class: "secondary", onclick: () => conditions.append(condition()) },
          "Add condition",
        ),
      ),
      h("button", { type: "submit" }, "Search"),
    ),
    status,
  );
  onSubmit(form, status, async () => {
    const text = form.elements.query.value;
    const body = {
      query: text,
      mode: form.elements.mode.value,
      k: Number(form.elements.k.value),
    };
    const filters = buildFilters(conditions, combine.value);
    if (filters) body.filters = filters;
    if (form.elements.min_score.value !== "") body.min_score = Number(form.elements.min_score.value);
    const collectionId = picker.select.value;
    const answer = await sendJson("POST", path.search(collectionId), withProviderKey(body));
    status.textContent = `${plural(answer.results.length, "result")} (${answer.mode}).`;
    replace(results, answer.results.map((result) => resultItem(collectionId, result, text)));
  });
  view.append(h("h1", {}, "Search"), form, results);
}

let conditionCount = 0;

function condition() {
  const n = ++conditionCount;
  const item = h(
    "div",
    { class: "condition row", role: "group", "aria-label": `Condition ${n}` },
    h("div", {}, h("label", { for: `filter-key-${n}` }, "Key"), h("input", { id: `filter-key-${n}`, class: "filter-key", required: true })),
    h(
      "div",
      {},
      h("label", { for: `filter-op-${n}` }, "Operator"),
      h("select", { id: `filter-op-${n}`, class: "filter-op" }, OPERATORS.map((op) => h("option", { value: op }, op))),
    ),
    h(
      "div",
      {},
      h("label", { for: `filter-value-${n}` }, "Value"),
      h("input", { id: `filter-value-${n}`, class: "filter-value", required: true, "aria-describedby": "filter-value-hint" }),
    ),
    h("button", { type: "button", class: "secondary", "aria-label": `Remove condition ${n}`, onclick: () => item.remove() }, "Remove"),
  );
  return item;
}

// The builder's rows as the API's filter: one comparison alone, several under and/or.
function buildFilters(conditions, combine) {
  const comparisons = [...conditions.querySelectorAll(".condition")].map((row) => {
    const type = row.querySelector(".filter-op").value;
    const raw = row.querySelector(".filter-value").value;
    const value = type === "in" || type === "nin" ? raw.split(",").map((part) => parseValue(part.trim())) : parseValue(raw);
    return { type, key: row.querySelector(".filter-key").value.trim(), value };
  });
  if (!comparisons.length) return null;
  return comparisons.length === 1 ? comparisons[0] : { type: combine, filters: comparisons };
}

function parseValue(text) {
  try {
    const value = JSON.parse(text);
    return typeof value === "object" && value !== null ? text : value;
  } catch {
    return text;
  }
}

function resultItem(collectionId, result, query) {
  const meta = result.metadata;
  const scores = [
    ["score", result.score],
    ["similarity", result.similarity],
    ["keyword rank", result.keyword_rank],
  ].filter(([, value]) => value !== undefined);
  return h(
    "li",
    { class: "result" },
    h(
      "p",
      { class: "result-head" },
      h("a", { href: chunkLink(collectionId, result.document_id, result.chunk_id) }, `${result.filename} · chunk #${meta.chunk_index}`),
      meta.page !== undefined ? ` · page ${meta.page}` : "",
      meta.section ? ` · ${meta.section}` : "",
    ),
    h("dl", { class: "scores" }, scores.map(([name, value]) => [h("dt", {}, name), h("dd", {}, formatScore(value))])),
    h("p", { class: "result-text" }, highlighted(result.text, query)),
  );
}
