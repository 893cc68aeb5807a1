/* Forms marked data-ajax are sent by fetch and answered in place, so a live call on the
   same page is never left. Without JavaScript they post and come back as usual. */
"use strict";

document.querySelectorAll("form[data-ajax]").forEach((form) => {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = form.querySelector("[data-ajax-status]");
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "X-Requested-With": "fetch" },
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      if (status) status.textContent = response.ok ? body.message : "Not saved: " + (body.error || response.status);
      if (response.ok && form.querySelector("textarea")) form.querySelector("textarea").value = "";
    } catch (error) {
      if (status) status.textContent = "Not saved: the box did not answer.";
    } finally {
      if (button) button.disabled = false;
    }
  });
});
