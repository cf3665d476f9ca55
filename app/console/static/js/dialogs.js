// The two modal dialogs of index.html: keys, and confirmation before a deletion.
// <dialog> with showModal() keeps focus inside, closes on Escape and hands focus back.

import { keys } from "./api.js";

function answer(dialog) {
  return new Promise((resolve) => {
    const form = dialog.querySelector("form");
    const submitted = (event) => {
      event.preventDefault();
      dialog.close(event.submitter ? event.submitter.value : "cancel");
    };
    form.addEventListener("submit", submitted);
    dialog.addEventListener(
      "close",
      () => {
        form.removeEventListener("submit", submitted);
        resolve(dialog.returnValue || "cancel");
      },
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// Resolves true when the user saved a service key.
export async function askForKeys(reason = "") {
  const dialog = document.getElementById("keys-dialog");
  const service = document.getElementById("service-key");
  const provider = document.getElementById("provider-key");
  document.getElementById("keys-reason").textContent = reason;
  service.value = keys.service;
  provider.value = keys.provider;
  const choice = await answer(dialog);
  if (choice === "save") keys.save(service.value.trim(), provider.value.trim());
  if (choice === "forget") keys.save("", "");
  return choice === "save" && Boolean(keys.service);
}

export async function confirmDeletion(message) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-message").textContent = message;
  return (await answer(dialog)) === "confirm";
}
