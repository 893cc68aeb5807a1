/* The handler's call console: admit, the caller's video, mute, own video, snapshots, chat, end. */
"use strict";

(function () {
  const root = document.getElementById("console");
  if (!root) return;
  const callId = root.dataset.call;
  const csrf = root.dataset.csrf;
  const $ = (id) => document.getElementById(id);

  let signal = null;
  let pc = null;
  let stream = null;
  let videoTransceiver = null;
  let iceServers = [];
  let connectedAt = root.dataset.connectedAt ? new Date(root.dataset.connectedAt) : null;
  let admitted = false;
  let ended = false;
  const diagnostics = { pc: null, state: root.dataset.state, stats: null };
  window.evrConsole = diagnostics;

  function setState(state) {
    diagnostics.state = state;
    $("call-state").textContent = state;
    const live = state === "connected";
    ["mute", "camera", "snapshot", "end"].forEach((id) => { $(id).disabled = !live; });
    $("admit").hidden = live || ended;
    $("admit").disabled = state !== "waiting" || admitted;
    if (state === "invited") $("stage-note").textContent = "The caller has not joined yet. This page tells you when they do.";
    if (state === "waiting") $("stage-note").textContent = "The caller is waiting. Admit them when you are ready.";
    if (live) $("stage-note").textContent = "";
  }

  function onMessage(message) {
    switch (message.type) {
      case "hello":
        iceServers = message.iceServers || [];
        showGuests(message.guests || []);
        setState(message.state);
        $("recording-indicator").hidden = !message.recording;
        if (message.state === "connected" && !admitted) admit();
        break;
      case "answer":
        pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        break;
      case "state":
        showGuests(message.guests || []);
        setState(message.state);
        $("recording-indicator").hidden = !message.recording;
        if (message.connectedAt) connectedAt = new Date(message.connectedAt);
        break;
      case "presence":
        if (message.role === "caller") {
          $("stage-note").textContent = message.present ? "" : "The caller has lost connection. They can rejoin with the same link.";
        }
        break;
      case "chat":
        EVR.appendChat($("chat"), message.from === "handler" ? "You" : message.from === "caller" ? "Caller" : message.name, message.text, message.from === "handler");
        break;
      case "snapshot":
        addSnapshot(message);
        break;
      case "location":
        showLocation(message);
        break;
      case "stats":
        showQuality(message.legs);
        break;
      case "statement":
        window.dispatchEvent(new CustomEvent("evr:statement", { detail: message.statement }));
        break;
      case "ended":
        finish(message.state, message.reason);
        break;
      case "error":
        $("stage-note").textContent = "Error: " + message.message;
        break;
    }
  }

  async function admit() {
    admitted = true;
    $("admit").disabled = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      $("stage-note").textContent = "Your microphone is not available: the caller will not hear you.";
      stream = new MediaStream();
    }
    pc = new RTCPeerConnection({ iceServers: iceServers });
    diagnostics.pc = pc;
    const audio = stream.getAudioTracks()[0];
    pc.addTransceiver(audio || "audio", { direction: "sendrecv", streams: [stream] });
    videoTransceiver = pc.addTransceiver("video", { direction: "sendrecv", streams: [stream] });
    EVR.preferCodecs(videoTransceiver);
    const guest = EVR.extraSlot(pc);
    const remote = new MediaStream();
    $("remote-video").srcObject = remote;
    $("guest-video").srcObject = guest.stream;
    pc.ontrack = (event) => {
      const forGuest = event.transceiver === guest.audio || event.transceiver === guest.video;
      (forGuest ? guest.stream : remote).addTrack(event.track);
    };
    pc.oniceconnectionstatechange = async () => {
      if (!ended && pc.iceConnectionState === "failed") {
        signal.send({ type: "restart", sdp: await EVR.offer(pc, { iceRestart: true }) });
      }
    };
    signal.send({ type: "join", sdp: await EVR.offer(pc) });
  }

  async function toggleCamera() {
    const button = $("camera");
    const on = button.getAttribute("aria-pressed") !== "true";
    if (on) {
      let video;
      try {
        video = (await navigator.mediaDevices.getUserMedia({ video: true })).getVideoTracks()[0];
      } catch (error) {
        $("stage-note").textContent = "Your camera is not available.";
        return;
      }
      stream.addTrack(video);
      await videoTransceiver.sender.replaceTrack(video);
      $("local-video").srcObject = stream;
    } else {
      const video = stream.getVideoTracks()[0];
      await videoTransceiver.sender.replaceTrack(null);
      if (video) { stream.removeTrack(video); video.stop(); }
      $("local-video").srcObject = null;
    }
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Stop my video" : "Send my video";
  }

  async function takeSnapshot() {
    const button = $("snapshot");
    button.disabled = true;
    try {
      const response = await fetch("/calls/" + callId + "/snapshots", {
        method: "POST",
        headers: { "X-CSRF-Token": csrf },
        credentials: "same-origin",
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        $("stage-note").textContent = "Snapshot not taken: " + (body.error || response.status);
      }
    } finally {
      button.disabled = diagnostics.state !== "connected";
    }
  }

  function addSnapshot(message) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = message.url;
    link.target = "_blank";
    link.rel = "noopener";
    const image = document.createElement("img");
    image.src = message.url;
    image.alt = "Snapshot, " + message.width + "×" + message.height;
    link.appendChild(image);
    const hash = document.createElement("span");
    hash.className = "hint";
    hash.textContent = "SHA-256 " + message.sha256.slice(0, 12) + "…";
    item.appendChild(link);
    item.appendChild(hash);
    $("gallery").appendChild(item);
  }

  /* Guests: who is invited, who is on the call, and the officer's removal. */
  function guestItem(id, text) {
    const item = document.createElement("li");
    item.dataset.guest = id;
    const who = document.createElement("span");
    who.textContent = text;
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.dataset.guestState = "";
    tag.textContent = "invited";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button--small button--danger";
    button.dataset.removeGuest = id;
    button.textContent = "Remove";
    item.append(who, " ", tag, " ", button);
    $("guest-list").appendChild(item);
  }

  function showGuests(present) {
    const list = $("guest-list");
    const tile = $("guest-tile");
    if (tile) tile.hidden = present.length === 0;
    if (present.length && $("guest-caption")) $("guest-caption").textContent = present[0].label + " (" + present[0].name + ")";
    if (!list) return;
    const on = new Set(present.map((g) => g.leg.replace("guest-", "")));
    list.querySelectorAll("li").forEach((item) => {
      const tag = item.querySelector("[data-guest-state]");
      if (on.has(item.dataset.guest)) tag.textContent = "on the call";
      else if (tag.textContent === "on the call") tag.textContent = "left";
    });
  }

  async function guestRequest(url, body) {
    const response = await fetch(url, {
      method: "POST",
      body: body,
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    $("guest-status").textContent = response.ok ? answer.message : "Not done: " + (answer.error || response.status);
    return response.ok ? answer : null;
  }

  if ($("guest-form")) {
    $("guest-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.target;
      const answer = await guestRequest(form.action, new URLSearchParams(new FormData(form)));
      if (!answer) return;
      guestItem(String(answer.id), answer.label + " (" + answer.name + ")");
      $("guest-link").value = answer.link;
      $("guest-link-row").hidden = false;
      $("guest-name").value = "";
    });
    $("guest-list").addEventListener("click", async (event) => {
      const id = event.target.dataset && event.target.dataset.removeGuest;
      if (!id) return;
      const answer = await guestRequest("/calls/" + callId + "/guests/" + id + "/remove", new URLSearchParams());
      if (answer) {
        const item = $("guest-list").querySelector('li[data-guest="' + id + '"]');
        if (item) item.remove();
        $("guest-link-row").hidden = true;
      }
    });
  }

  function showLocation(message) {
    const element = $("location");
    element.hidden = false;
    element.textContent = "Caller's location: " + message.latitude.toFixed(5) + ", " +
      message.longitude.toFixed(5) + " (within " + Math.round(message.accuracy) + " m)";
  }

  function showQuality(legs) {
    diagnostics.stats = legs;
    const caller = legs && legs.caller;
    const element = $("quality");
    if (!caller) { element.dataset.level = "unknown"; element.textContent = "Connection: –"; return; }
    const loss = caller.packet_loss_ratio || 0;
    const rtt = caller.rtt_s || 0;
    const level = loss > 0.08 || rtt > 0.6 ? "poor" : loss > 0.02 || rtt > 0.3 ? "fair" : "good";
    element.dataset.level = level;
    element.textContent = "Connection: " + level;
  }

  const ENDED_NOTES = {
    quick_exit: "The caller left with quick exit. They may not be safe: do not call back unless a safe way was agreed.",
    caller_not_safe: "Video ended: caller not safe. The incident is flagged for an emergency call-back.",
  };

  function finish(state, reason) {
    ended = true;
    setState(state || "ended");
    $("admit").hidden = true;
    if (signal) signal.close();
    if (pc) pc.close();
    if (stream) stream.getTracks().forEach((t) => t.stop());
    $("stage-note").textContent = ENDED_NOTES[reason] || "The call has ended.";
  }

  setInterval(() => {
    if (connectedAt && !ended) $("call-timer").textContent = EVR.formatDuration((Date.now() - connectedAt) / 1000);
  }, 1000);

  $("admit").addEventListener("click", admit);
  $("camera").addEventListener("click", toggleCamera);
  $("snapshot").addEventListener("click", takeSnapshot);
  $("mute").addEventListener("click", () => {
    const button = $("mute");
    const muted = button.getAttribute("aria-pressed") !== "true";
    stream.getAudioTracks().forEach((t) => { t.enabled = !muted; });
    button.setAttribute("aria-pressed", String(muted));
    button.textContent = muted ? "Unmute" : "Mute";
  });
  $("end").addEventListener("click", () => { signal.send({ type: "end" }); });
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("chat-text").value.trim();
    if (text && signal.send({ type: "chat", text: text })) $("chat-text").value = "";
  });

  signal = new EVR.Signal("/ws/calls/" + encodeURIComponent(callId), onMessage);
})();
