/* Safety on the caller's phone: the quick exit (on the pages of an RVR link), and forms
   that do not leave their page in the back history (on every caller page).

   Quick exit (the button, or Shift pressed three times): the call ends (a beacon to the
   box, which the browser sends even as the page goes, and the caller page's own hang-up),
   local and session storage are cleared, and location.replace takes the tab to a harmless
   site, so Back does not return here. Forms marked data-replace-history are sent by fetch
   and the page they lead to replaces this one in the history; an error summary leads to
   its fields. */
"use strict";

(function () {
  const exit = document.getElementById("quick-exit");
  let leaving = false;

  function leave(event) {
    if (event) event.preventDefault();
    if (leaving) return;
    leaving = true;
    try { window.dispatchEvent(new Event("evr:quick-exit")); } catch (e) { /* carry on */ }
    if (exit.dataset.beacon && navigator.sendBeacon) {
      const body = new URLSearchParams();
      body.set(exit.dataset.csrfField, exit.dataset.csrf);
      try { navigator.sendBeacon(exit.dataset.beacon, body); } catch (e) { /* carry on */ }
    }
    try { window.localStorage.clear(); } catch (e) { /* storage may be off */ }
    try { window.sessionStorage.clear(); } catch (e) { /* storage may be off */ }
    document.title = "";
    document.body.hidden = true;
    window.location.replace(exit.href);
  }

  if (exit) exit.addEventListener("click", leave);

  let shifts = [];
  document.addEventListener("keyup", (event) => {
    if (!exit || event.key !== "Shift") return;
    const now = Date.now();
    shifts = shifts.filter((t) => now - t < 2000).concat(now);
    if (shifts.length >= 3) leave(event);
  });

  /* The error summary (GOV.UK): focused when the page comes back with errors; each of
     its links moves the focus to its field, with the field's question in view. */
  const summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
    summary.querySelectorAll("a[href^='#']").forEach((link) => {
      link.addEventListener("click", (event) => {
        const field = document.getElementById(link.getAttribute("href").slice(1));
        if (!field) return;
        event.preventDefault();
        const question = field.closest("fieldset") || field;
        question.scrollIntoView({ block: "start" });
        field.focus({ preventScroll: true });
      });
    });
  }

  document.querySelectorAll("form[data-replace-history]").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      try {
        const response = await fetch(form.action, {
          method: "POST",
          body: new URLSearchParams(new FormData(form)),
          credentials: "same-origin",
        });
        if (response.ok && response.redirected) {
          window.location.replace(response.url);
          return;
        }
      } catch (e) { /* fall back to an ordinary post */ }
      if (button) button.disabled = false;
      form.submit();
    });
  });
})();
