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
      state.textContent = v + " signed by " + statement.signedName + " at " + new Date(statement.signedAt).toLocaleTimeString() + ".";
      if (statement.pdf) {
        pdf.hidden = false;
        pdf.querySelector("a").href = statement.pdf;
      }
      root.querySelectorAll(".statement-form button").forEach((b) => { b.disabled = true; });
    } else if (statement.state === "sent") {
      state.textContent = v + " is on the caller's phone to read and sign.";
    } else if (statement.state === "changes_requested") {
      state.textContent = "The caller asked for a change: " + statement.changeRequest;
    } else {
      state.textContent = v + ": draft.";
    }
  }

  root.addEventListener("evr:saved", (event) => { if (event.detail.ok) show(event.detail.body.statement); });
  window.addEventListener("evr:statement", (event) => show(event.detail));
})();
