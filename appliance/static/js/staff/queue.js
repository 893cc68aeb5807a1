/* The waiting-callers list, most urgent first as the server sorts it: polls every three
   seconds; each caller's time waited against the wait target ticks by itself (wait-timer.js). */
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

  /* Calls a colleague handed over (to this user, or to the queue): each with its note and
     a form that takes it (a POST with the page's CSRF token). */
  let shownHandovers = "";
  function showHandovers(handovers) {
    const section = document.getElementById("handovers");
    const now = JSON.stringify(handovers);
    if (!section || now === shownHandovers) return;  /* a form being pressed is not replaced */
    shownHandovers = now;
    const list = document.getElementById("handover-list");
    list.replaceChildren();
    section.hidden = !handovers.length;
    handovers.forEach((entry) => {
      const item = document.createElement("li");
      item.dataset.handover = entry.id;
      const what = document.createElement("p");
      what.textContent = entry.incident + " (" + (entry.state === "connected" ? "live" : "waiting") + "), from " + entry.from + (entry.toYou ? " to you" : " to the queue") + ": " + entry.note;
      const form = document.createElement("form");
      form.method = "post";
      form.action = entry.accept;
      const token = document.createElement("input");
      token.type = "hidden";
      token.name = section.dataset.csrfField;
      token.value = section.dataset.csrf;
      const button = document.createElement("button");
      button.type = "submit";
      button.className = "button button--small";
      button.textContent = "Take this call";
      form.append(token, button);
      item.append(what, form);
      list.appendChild(item);
    });
  }

  async function refresh() {
    let data;
    try {
      const response = await fetch(table.dataset.source, { credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch (error) { return; }
    showHandovers(data.handovers || []);
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
      const waiting = cell("");
      const timer = tag(window.EVR ? EVR.formatDuration(entry.waited || 0) : "", "wait-timer");
      timer.dataset.waited = String(entry.waited || 0);
      timer.dataset.target = String(data.targetSeconds || 0);
      waiting.appendChild(timer);
      row.appendChild(waiting);
      const flags = cell("");
      if (entry.rvr) flags.appendChild(tag("RVR", "tag tag--bad"));
      if (entry.overdue) flags.appendChild(tag("Past target", "tag tag--bad"));
      if (entry.overdue) row.classList.add("breach");
      row.dataset.overdue = entry.overdue ? "yes" : "no";
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
  setInterval(refresh, 1000 * Math.min(3, Number(document.body.dataset.refreshSeconds) || 5));
})();
