/* Safety on the caller's phone: the quick exit on every caller page, and forms that do not
   leave their page in the back history.

   Quick exit (the button, or Shift pressed three times): the call ends (a beacon to the
   box, which the browser sends even as the page goes, and the caller page's own hang-up),
   local and session storage are cleared, and location.replace takes the tab to a harmless
   site, so Back does not return here. Forms marked data-replace-history are sent by fetch
   and the page they lead to replaces this one in the history. */
"use strict";

(function () {
  const exit = document.getElementById("quick-exit");
  if (!exit) return;
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

  exit.addEventListener("click", leave);

  let shifts = [];
  document.addEventListener("keyup", (event) => {
    if (event.key !== "Shift") return;
    const now = Date.now();
    shifts = shifts.filter((t) => now - t < 2000).concat(now);
    if (shifts.length >= 3) leave(event);
  });

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
