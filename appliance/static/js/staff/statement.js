/* The officer's view of the witness statement: its state line and the signed PDF's link,
   kept current from form answers and from the live call ("evr:statement" events). */
"use strict";

(function () {
  const root = document.getElementById("statement");
  if (!root) return;
  const state = document.getElementById("statement-state");
  const pdf = document.getElementById("statement-pdf");

  function show(statement) {
    if (!statement) return;
    root.dataset.state = statement.state;
    const v = "Version " + statement.version;
    if (statement.state === "signed") {
      state.textContent = v + " signed by " + statement.signedName + (statement.signedBy === "typed" ? " (typed name, confirmed)" : "") + " at " + new Date(statement.signedAt).toLocaleTimeString() + ".";
      if (statement.pdf) {
        pdf.hidden = false;
        pdf.querySelector("a").href = statement.pdf;
      }
      root.querySelectorAll(".statement-form button").forEach((b) => { b.disabled = true; });
      root.querySelectorAll(".statement-form input[type=text], .statement-form textarea").forEach((f) => { f.readOnly = true; });
      root.querySelectorAll(".statement-form [data-ajax-status]").forEach((s) => { s.textContent = ""; });
    } else if (statement.state === "sent") {
      state.textContent = v + " is on the caller's phone to read and sign.";
    } else if (statement.state === "changes_requested") {
      state.textContent = "The caller asked for a change: " + statement.changeRequest;
    } else {
      state.textContent = v + ": draft.";
    }
  }

  /* Drafts saved as you type: two seconds after the last key the text is saved on the box
     (the same "Save draft" the button does, audited as an edit), so a reload or a lost
     page keeps it. Not while the caller holds it to sign, nor once signed. */
  const form = root.querySelector(".statement-form");
  const draft = document.getElementById("statement-draft");
  let timer = null;
  let saving = null;

  async function saveDraft() {
    timer = null;
    if (root.dataset.state === "sent" || root.dataset.state === "signed") return;
    const body = new URLSearchParams(new FormData(form));
    saving = fetch(form.action, {
      method: "POST",
      body: body,
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin",
    });
    try {
      const response = await saving;
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        show(answer.statement);
        const at = new Date().toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
        draft.textContent = "Draft saved " + at;
      } else {
        draft.textContent = "Draft not saved: " + (answer.error || response.status);
      }
    } catch (error) {
      draft.textContent = "Draft not saved: the box did not answer.";
    } finally {
      saving = null;
    }
  }

  if (form && draft) {
    form.addEventListener("input", () => {
      clearTimeout(timer);
      draft.textContent = "Not saved yet…";
      timer = setTimeout(saveDraft, 2000);
    });
    form.addEventListener("submit", () => { clearTimeout(timer); timer = null; }, true);
    window.addEventListener("beforeunload", (event) => {
      if (timer === null && saving === null) return;
      event.preventDefault();
      event.returnValue = "";
    });
  }

  root.addEventListener("evr:saved", (event) => { if (event.detail.ok) show(event.detail.body.statement); });
  window.addEventListener("evr:statement", (event) => show(event.detail));
})();
