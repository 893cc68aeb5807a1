/* "Ended by mistake? Rejoin the call": the time left, counted down on the phone from
   what the box said (never the phone's own clock against the box's), and the button
   gone when it is up. The page calls window.evrRejoin(seconds) after the call ends;
   a page drawn with the offer (data-seconds) starts at once. */
"use strict";

(function () {
  const box = document.getElementById("rejoin");
  if (!box) return;
  let timer = null;

  function show(seconds) {
    const until = Date.now() + seconds * 1000;
    clearInterval(timer);
    const tick = () => {
      const left = Math.round((until - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(timer);
        box.hidden = true;
        box.remove();
        return;
      }
      document.getElementById("rejoin-left").textContent =
        Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    };
    box.hidden = false;
    tick();
    timer = setInterval(tick, 1000);
  }

  window.evrRejoin = (seconds) => { if (seconds > 0) show(seconds); };
  const initial = Number(box.dataset.seconds || 0);
  if (initial > 0) show(initial);
})();
