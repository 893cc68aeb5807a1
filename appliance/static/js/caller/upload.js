/* The upload form works without this: it only says that sending is under way. */
"use strict";

const uploadForm = document.getElementById("upload-form");
if (uploadForm) {
  uploadForm.addEventListener("submit", () => {
    const _ = window.evrGettext;
    const status = document.getElementById("upload-status");
    const button = uploadForm.querySelector("button[type=submit]");
    if (status) status.textContent = _("Sending… keep this page open until it says Received.");
    if (button) button.disabled = true;
  });
}
