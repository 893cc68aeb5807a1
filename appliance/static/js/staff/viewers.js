/* The console's live view for responders: make a view-only link, see who is watching
   (from the call's state, which console.js passes on as "evr:state"), revoke a link. */
"use strict";

(function () {
  const root = document.getElementById("viewers");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const list = $("viewer-list");

  function item(id, name) {
    const li = document.createElement("li");
    li.dataset.viewer = id;
    li.dataset.leg = "viewer-" + id;
    const who = document.createElement("span");
    who.textContent = name;
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.dataset.viewerState = "";
    tag.textContent = "not opened";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button--small button--danger";
    button.dataset.revokeViewer = id;
    button.textContent = "Revoke";
    li.append(who, " ", tag, " ", button);
    list.appendChild(li);
  }

  async function request(url, body) {
    const response = await fetch(url, {
      method: "POST",
      body: body,
      headers: { "X-CSRF-Token": root.dataset.csrf },
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    $("viewer-status").textContent = response.ok ? answer.message : "Not done: " + (answer.error || response.status);
    return response.ok ? answer : null;
  }

  $("viewer-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const answer = await request(form.action, new URLSearchParams(new FormData(form)));
    if (!answer) return;
    item(String(answer.id), answer.name);
    $("viewer-link").value = answer.link;
    $("viewer-link-row").hidden = false;
    $("viewer-name").value = "";
  });

  list.addEventListener("click", async (event) => {
    const id = event.target.dataset && event.target.dataset.revokeViewer;
    if (!id) return;
    const answer = await request("/calls/" + root.dataset.call + "/viewers/" + id + "/revoke", new URLSearchParams());
    if (!answer) return;
    const li = list.querySelector('li[data-viewer="' + id + '"]');
    if (li) li.remove();
    $("viewer-link-row").hidden = true;
  });

  window.addEventListener("evr:state", (event) => {
    const watching = new Set((event.detail.viewers || []).map((v) => v.leg));
    list.querySelectorAll("li").forEach((li) => {
      const tag = li.querySelector("[data-viewer-state]");
      if (watching.has(li.dataset.leg)) tag.textContent = "watching";
      else if (tag.textContent === "watching") tag.textContent = "stopped watching";
    });
  });
})();
