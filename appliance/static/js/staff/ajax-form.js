/* Forms marked data-ajax are sent by fetch and answered in place, so a live call on the
   same page is never left. Without JavaScript they post and come back as usual.
   data-ajax-keep: leave what was typed (a statement); data-ajax-reload: reload after.
   The button's formaction is honoured, and each answer is announced as an "evr:saved"
   event on the form for the page's own script. */
"use strict";

document.querySelectorAll("form[data-ajax]").forEach((form) => {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = form.querySelector("[data-ajax-status]");
    const button = event.submitter || form.querySelector("button[type=submit]");
    const action = (event.submitter && event.submitter.getAttribute("formaction")) || form.action;
    if (button) button.disabled = true;
    try {
      const response = await fetch(action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "X-Requested-With": "fetch" },
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      if (status) status.textContent = response.ok ? body.message : "Not saved: " + (body.error || response.status);
      form.dispatchEvent(new CustomEvent("evr:saved", { bubbles: true, detail: { ok: response.ok, body: body } }));
      if (response.ok && form.hasAttribute("data-ajax-reload")) window.location.reload();
      if (response.ok && !form.hasAttribute("data-ajax-keep") && form.querySelector("textarea")) form.querySelector("textarea").value = "";
    } catch (error) {
      if (status) status.textContent = "Not saved: the box did not answer.";
    } finally {
      if (button) button.disabled = false;
    }
  });
});
