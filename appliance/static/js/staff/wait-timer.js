/* A waiting caller's timer against the wait target (EVR_QUEUE_TARGET_SECONDS), on the
   queue board, the waiting list and the call console: any element with data-waited (the
   seconds the caller had waited when the box sent the page or the row: the box's clock,
   not this computer's) and data-target (seconds) counts on each second, "01:05 of 03:00",
   and once past the target says so and is marked (its table row too). An element whose
   data-waited is reset (the console, when a caller starts waiting) starts again. */
"use strict";

(function () {
  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = String(m).padStart(2, "0"), ss = String(r).padStart(2, "0");
    return h ? h + ":" + mm + ":" + ss : mm + ":" + ss;
  }

  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-waited]").forEach((el) => {
      if (!el.dataset.seenAt) el.dataset.seenAt = String(now);
      const waited = Number(el.dataset.waited) + (now - Number(el.dataset.seenAt)) / 1000;
      const target = Number(el.dataset.target) || 0;
      const over = target > 0 && waited > target;
      el.textContent = clock(waited) + (over ? " waiting, over the " + clock(target) + " target" : " of " + clock(target));
      el.classList.toggle("wait-timer--over", over);
      const row = el.closest("tr");
      if (row) row.classList.toggle("breach", over || row.dataset.overdue === "yes");
    });
  }

  tick();
  setInterval(tick, 1000);
})();
