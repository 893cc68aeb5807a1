/* Drafts saved as you type for the console's forms marked data-draft (a note, THRIVE):
   two seconds after the last change the form is saved on the box as the officer's own
   draft (not sent, not part of the record), and the page says "Draft saved 14:02" (UK
   time, from the box). The console renders a saved draft back into its form, so a reload
   keeps it; sending the form ends the draft on the box. Leaving the page while a form has
   changes not yet kept (a draft still to save or refused, or a form without drafts that
   was changed and not sent) asks first. */
"use strict";

(function () {
  const unsaved = new Set();

  function watch(form) {
    const status = form.querySelector("[data-draft-status]");
    let timer = null;
    let inflight = null;

    function post(body) {
      inflight = fetch(form.dataset.draft, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      });
      return inflight;
    }

    async function save() {
      timer = null;
      try {
        const response = await post(new URLSearchParams(new FormData(form)));
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) {
          status.textContent = "Draft not saved: " + (answer.error || response.status);
          return;
        }
        status.textContent = answer.saved ? "Draft saved " + answer.saved : "";
        if (timer === null) unsaved.delete(form);
      } catch (error) {
        status.textContent = "Draft not saved: the box did not answer.";
      }
    }

    form.addEventListener("input", () => {
      unsaved.add(form);
      clearTimeout(timer);
      status.textContent = "Not saved yet…";
      timer = setTimeout(save, 2000);
    });
    form.addEventListener("submit", () => { clearTimeout(timer); timer = null; }, true);
    form.addEventListener("evr:saved", async (event) => {
      if (!event.detail.ok) return;
      unsaved.delete(form);
      status.textContent = "";
      // The box ended the draft when the form was sent; a save still on its way when the
      // form went would bring it back, so once it lands, end it again (an empty draft).
      if (inflight) {
        await inflight.catch(() => null);
        const token = form.querySelector("input[type=hidden][name=csrf_token]");
        post(new URLSearchParams(token ? [[token.name, token.value]] : []));
      }
    });
  }

  document.querySelectorAll("form[data-draft]").forEach(watch);

  /* Forms without drafts on the console (the outcome, DASH): changed and not sent. */
  document.querySelectorAll("#console form[data-ajax]:not([data-draft]):not(.statement-form)").forEach((form) => {
    form.addEventListener("input", () => unsaved.add(form));
    form.addEventListener("evr:saved", (event) => { if (event.detail.ok) unsaved.delete(form); });
  });

  window.addEventListener("beforeunload", (event) => {
    if (!unsaved.size) return;
    event.preventDefault();
    event.returnValue = "";
  });
})();
