/* The waiting-callers list, most urgent first as the server sorts it: polls every three seconds. */
"use strict";

(function () {
  const table = document.getElementById("queue");
  if (!table) return;
  const body = table.querySelector("tbody");

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function tag(text, className) {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = text;
    return span;
  }

  async function refresh() {
    let data;
    try {
      const response = await fetch(table.dataset.source, { credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch (error) { return; }
    // A keyboard user on a row's link keeps their place: the same link has focus after.
    const focused = body.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
    body.replaceChildren();
    if (!data.waiting.length) {
      const row = document.createElement("tr");
      const td = cell("Nobody is waiting.");
      td.colSpan = 7;
      row.appendChild(td);
      body.appendChild(row);
      return;
    }
    data.waiting.forEach((entry) => {
      const row = document.createElement("tr");
      row.appendChild(cell(entry.name));
      row.appendChild(cell(entry.incident));
      row.appendChild(cell(entry.category));
      row.appendChild(cell(String(entry.grade)));
      const since = entry.waitingSince ? (Date.now() - new Date(entry.waitingSince)) / 1000 : 0;
      row.appendChild(cell(window.EVR ? EVR.formatDuration(since) : Math.round(since) + " s"));
      const flags = cell("");
      if (entry.rvr) flags.appendChild(tag("RVR", "tag tag--bad"));
      if (entry.overdue) flags.appendChild(tag("Past target", "tag tag--bad"));
      if (entry.overdue) row.classList.add("breach");
      row.appendChild(flags);
      const action = document.createElement("td");
      const link = document.createElement("a");
      link.className = "button button--small";
      link.href = entry.url;
      link.textContent = entry.present ? "Open call" : "Open call (caller away)";
      action.appendChild(link);
      row.appendChild(action);
      body.appendChild(row);
    });
    const again = focused && Array.from(body.querySelectorAll("a")).find((a) => a.getAttribute("href") === focused);
    if (again) again.focus({ preventScroll: true });
  }

  refresh();
  setInterval(refresh, 3000);
})();
