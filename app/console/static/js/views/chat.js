// Chat: a conversation kept in the page, answered from a collection (or from none),
// streamed token by token; its sources are citations that open the chunk.

import { path, streamEvents, withProviderKey } from "../api.js";
import { chunkLink, h, onSubmit, replace, statusLine } from "../dom.js";
import { collectionPicker } from "./picker.js";

// /api/chat (no collection) takes one message; earlier turns go in its instructions.
const PLAIN_INSTRUCTIONS = "You are a helpful assistant.";

export async function render(view, _params, query) {
  const picker = await collectionPicker("chat-collection", query.get("collection"), true);
  const transcript = h("ol", { class: "transcript", "aria-label": "Conversation" });
  const status = statusLine("chat-status");
  let messages = [];
  const clear = () => {
    messages = [];
    replace(transcript);
    status.textContent = "";
  };
  picker.select.addEventListener("change", clear);
  const form = h(
    "form",
    { class: "stacked-form", "aria-label": "Ask" },
    h(
      "fieldset",
      {},
      h(
        "div",
        { class: "row" },
        picker.field,
        h(
          "div",
          {},
          h("label", { for: "chat-model" }, "Model (optional)"),
          h("input", { id: "chat-model", name: "model", placeholder: "the server's default" }),
        ),
      ),
      h("label", { for: "chat-question" }, "Your message"),
      h("textarea", { id: "chat-question", name: "question", rows: 3, required: true }),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit" }, "Send"),
        h("button", { type: "button", class: "secondary", onclick: clear }, "New conversation"),
      ),
    ),
    status,
  );
  const question = form.elements.question;
  // Enter sends, Shift+Enter starts a new line, as in most chat boxes.
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  onSubmit(form, status, async () => {
    const text = question.value.trim();
    if (!text) return;
    const collectionId = picker.select.value;
    const model = form.elements.model.value.trim();
    transcript.append(h("li", { class: "turn user" }, h("p", { class: "who" }, "You"), h("p", {}, text)));
    const turn = answerTurn(collectionId);
    transcript.append(turn.element);
    question.value = "";
    status.textContent = "Answering…";
    const answer = await streamAnswer(collectionId, model, messages, text, turn).catch((error) => {
      turn.element.remove();
      transcript.lastElementChild.remove();
      question.value = text;
      throw error;
    });
    messages = [...messages, { role: "user", content: text }, { role: "assistant", content: answer }];
    status.textContent = "Answer complete.";
  });
  view.append(h("h1", {}, "Chat"), form, transcript);
}

function streamAnswer(collectionId, model, history, text, turn) {
  const request = collectionId
    ? {
        path: path.chat(collectionId),
        body: { messages: [...history, { role: "user", content: text }] },
      }
    : {
        path: "/api/chat",
        body: { developer_message: plainInstructions(history), user_message: text },
      };
  if (model) request.body.model = model;
  let answer = "";
  let failure = null;
  return streamEvents(request.path, { method: "POST", json: withProviderKey(request.body) }, (event, data) => {
    if (event === "sources") turn.sources(data.sources);
    else if (event === "token") turn.token((answer += data.text));
    else if (event === "done") turn.done(data.model, data.usage);
    else if (event === "error") failure = data.detail;
  }).then(() => {
    turn.cite(answer);
    if (failure) turn.failed(failure);
    return answer;
  });
}

function plainInstructions(history) {
  if (!history.length) return PLAIN_INSTRUCTIONS;
  const lines = history.map((message) => `${message.role}: ${message.content}`);
  return `${PLAIN_INSTRUCTIONS}\n\nThe conversation so far:\n${lines.join("\n")}`;
}

// One answer as it arrives: its text, then its sources as citations, then the model.
function answerTurn(collectionId) {
  const text = h("p", { class: "answer", "aria-busy": "true" });
  const sources = h("ol", { class: "sources", "aria-label": "Sources" });
  const meta = h("p", { class: "hint" });
  const element = h("li", { class: "turn assistant" }, h("p", { class: "who" }, "Assistant"), text, sources, meta);
  let cited = [];
  return {
    element,
    token(answer) {
      text.textContent = answer;
    },
    sources(found) {
      cited = found;
      replace(
        sources,
        found.map((source, index) =>
          h(
            "li",
            {},
            h(
              "a",
              { class: "citation", href: chunkLink(collectionId, source.document_id, source.chunk_id) },
              `[${index + 1}] ${source.filename}${source.page ? `, page ${source.page}` : ""}`,
            ),
            h("span", { class: "hint" }, ` ${source.snippet}`),
          ),
        ),
      );
    },
    // The answer's `[Source: name]` marks become links to that file's first source.
    cite(answer) {
      text.removeAttribute("aria-busy");
      const parts = answer.split(/(\[Source: [^\]]+\])/g);
      replace(
        text,
        parts.map((part, index) => {
          if (!(index % 2)) return part;
          const name = part.slice("[Source: ".length, -1).trim();
          const source = cited.find((candidate) => candidate.filename === name);
          return source
            ? h("a", { class: "citation", href: chunkLink(collectionId, source.document_id, source.chunk_id) }, part)
            : part;
        }),
      );
    },
    done(model, usage) {
      const tokens = usage
        ? ` · ${usage.prompt_tokens} prompt + ${usage.completion_tokens} answer = ${usage.total_tokens} tokens`
        : "";
      meta.textContent = `${model}${tokens}`;
    },
    failed(detail) {
      element.append(h("p", { class: "error" }, detail));
    },
  };
}
