/* On every staff page: how many callers are waiting, in the menu and in the tab's title,
   so a handler on another page (or another tab) sees a caller arrive. */
"use strict";

(function () {
  const count = document.getElementById("waiting-count");
  if (!count) return;
  const title = document.title;

  async function refresh() {
    let data;
    try {
      const response = await fetch(count.dataset.source, { credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch (error) { return; }
    const waiting = data.waiting.length;
    count.textContent = String(waiting);
    count.hidden = waiting === 0;
    document.title = waiting ? "(" + waiting + " waiting) " + title : title;
  }

  refresh();
  setInterval(refresh, 5000);
})();
