/* Keeps a region of the page current: fetches the server's fragment every five seconds. */
"use strict";

(function () {
  const region = document.getElementById("live-region");
  if (!region) return;
  async function refresh() {
    if (region.contains(document.activeElement) && document.activeElement.tagName === "SELECT") return;
    try {
      const response = await fetch(region.dataset.refresh, { credentials: "same-origin" });
      if (response.ok) region.innerHTML = await response.text();
    } catch (error) { /* keep what is shown; try again next time */ }
  }
  setInterval(refresh, 5000);
})();
