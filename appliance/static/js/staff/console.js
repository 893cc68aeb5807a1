/* The handler's call console: admit, the caller's video, mute, own video, snapshots, chat, end;
   the state pill and indicators on the video, the tools' tabs, fullscreen and the keys.
   A supervisor on a call another officer holds observes it (receive only) and may take it
   over; a console whose socket the box closed says why in plain words and goes read-only. */
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
  let waitingAt = root.dataset.waitingAt ? new Date(root.dataset.waitingAt) : null;
  let admitted = false;
  let ended = ["connected", "waiting", "invited"].indexOf(root.dataset.state) < 0;
  let recording = false;
  let declined = false;
  let lastFrames = 0;
  let stillSince = null;
  let mode = root.dataset.mode || "handle";
  let takenBy = null;
  let guestSlots = 1; // until the box's hello says how many guests a call may have
  let guestNames = {}; // leg → "Interpreter (Ana Silva)"
  let tiles = null;
  let handedTo = null;
  // What the caller's phone sends, read by the box off their offer ("audio", "video"):
  // a caller whose microphone is refused shows the scene and types. Null until they join.
  let callerSends = null;
  const diagnostics = { pc: null, state: root.dataset.state, stats: null, mode: mode, closed: null, soundOnly: false, textFirst: false };
  window.evrConsole = diagnostics;

  const WORDS = { waiting: "WAITING", connected: "LIVE", invited: "NOT JOINED" };
  const ENDED_BY = {
    caller_ended: "by caller", handler_ended: "by you", quick_exit: "caller used quick exit",
    caller_not_safe: "caller not safe", abandoned: "caller left", revoked: "link revoked",
    media_failed: "connection failed", appliance_restarted: "box restarted", appliance_stopped: "box stopped",
  };

  /* The pill on the video: one word and the time in that state (the wait, then the call). */
  function showPill(state, reason) {
    const pill = $("call-state");
    pill.dataset.state = WORDS[state] ? state : "ended";
    const by = ENDED_BY[reason || root.dataset.endReason];
    $("call-state-word").textContent = WORDS[state] || ("ENDED" + (by ? " " + by : ""));
    tick();
  }

  function tick() {
    const state = $("call-state").dataset.state;
    const since = state === "connected" ? connectedAt : state === "waiting" ? waitingAt : null;
    $("call-timer").textContent = since ? EVR.formatDuration((Date.now() - since) / 1000).replace(/^0(\d:)/, "$1") : "";
  }

  /* Recording, sound only and connection are shown only while the call is live. */
  function showIndicators() {
    const live = diagnostics.state === "connected" && !ended;
    $("recording-indicator").hidden = !(live && recording);
    $("not-recording").hidden = !(live && !recording);
    $("not-recording").textContent = declined ? "Not recording – caller declined" : "Not recording";
    $("quality").hidden = !live;
    if (!live) $("sound-only").hidden = true;
    const silent = Array.isArray(callerSends) && !callerSends.includes("audio");
    $("no-microphone").hidden = !(live && silent);
    $("no-microphone").textContent = silent && !callerSends.includes("video")
      ? "Caller has no camera or microphone – use messages"
      : "Caller has no microphone – use messages";
  }

  let rejoin = false;  // this call is a caller's rejoin after ending (docs/signalling.md)

  function setState(state) {
    const was = diagnostics.state;
    diagnostics.state = state;
    showPill(state);
    const live = state === "connected";
    if (live && !connectedAt) connectedAt = new Date();
    if (state === "waiting" && !waitingAt) waitingAt = new Date();
    if (state === "waiting" && was !== "waiting") {
      $("wait-timer").dataset.waited = "0";  // the caller has just joined: wait-timer.js counts from here
      delete $("wait-timer").dataset.seenAt;
    }
    $("wait-target").hidden = state !== "waiting";
    showIndicators();
    ["mute", "camera", "snapshot", "end", "sound-only-toggle", "text-first-toggle"].forEach((id) => { $(id).disabled = !live || mode !== "handle"; });
    $("admit").hidden = live || ended || mode !== "handle";
    $("admit").disabled = state !== "waiting" || admitted;
    if (mode !== "handle") return;
    if (state === "invited") $("stage-note").textContent = "The caller has not joined yet. This page tells you when they do.";
    if (state === "waiting") $("stage-note").textContent = rejoin
      ? "The caller ended the call and has come back on the same link. They are waiting: admit them when you are ready."
      : "The caller is waiting. Admit them when you are ready.";
    if (live) $("stage-note").textContent = "";
  }

  function onMessage(message) {
    if (message.type === "hello" || message.type === "state") window.dispatchEvent(new CustomEvent("evr:state", { detail: message }));
    switch (message.type) {
      case "hello":
        iceServers = message.iceServers || [];
        if (typeof message.guestSlots === "number") guestSlots = message.guestSlots;
        rejoin = !!message.rejoin;
        if (message.soundOnly) soundOnly(true, "", false);
        textFirst(!!message.textFirst);
        callerSends = message.callerSends === undefined ? null : message.callerSends;
        if (message.role === "observer") observing();
        else if (mode === "observe") handling();
        showGuests(message.guests || []);
        showObservers(message.observers || []);
        recording = !!message.recording;
        declined = message.consentRecording === false;
        if (message.connectedAt) connectedAt = new Date(message.connectedAt);
        setState(message.state);
        if (mode === "observe" && !admitted) observe();
        else if (message.state === "connected" && !admitted) admit();
        if (tiles && message.slots) tiles.route(message.slots); // changed while the socket was away
        break;
      case "answer":
        pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        break;
      case "slots":
        if (tiles) tiles.route(message.slots);
        break;
      case "state":
        if (typeof message.soundOnly === "boolean" && message.soundOnly !== diagnostics.soundOnly) soundOnly(message.soundOnly, "", false);
        if (typeof message.textFirst === "boolean") textFirst(message.textFirst);
        if (message.callerSends !== undefined) callerSends = message.callerSends;
        showGuests(message.guests || []);
        rejoin = !!message.rejoin;
        showObservers(message.observers || []);
        recording = !!message.recording;
        declined = message.consentRecording === false;
        if (message.connectedAt) connectedAt = new Date(message.connectedAt);
        setState(message.state);
        break;
      case "presence":
        if (message.role === "caller") {
          $("stage-note").textContent = message.present ? "" : "The caller has lost connection. They can rejoin with the same link.";
        }
        break;
      case "chat":
        EVR.appendChat($("chat"), message.from === "handler" ? "You" : message.from === "caller" ? "Caller" : message.name, message.text, message.from === "handler");
        $("chat").scrollTop = $("chat").scrollHeight;
        if (message.from !== "handler" && $("tab-chat") && $("tab-chat").getAttribute("aria-selected") !== "true") $("tab-chat").classList.add("tab--news");
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
      case "sound_only":
        soundOnly(message.on, message.by, message.automatic);
        break;
      case "taken_over":
        takenBy = message;
        break;
      case "handed_over":
        handedTo = message;
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
    const forGuests = EVR.guestSlots(pc, guestSlots);
    if (tiles) tiles.route({}); // a console admitting again: the old connection's tiles go
    tiles = new EVR.Tiles(pc, $("guest-tile"), (leg) => guestNames[leg] || "Guest");
    const remote = new MediaStream();
    EVR.attach($("remote-video"), remote);
    pc.ontrack = (event) => {
      if (forGuests.indexOf(event.transceiver) < 0) remote.addTrack(event.track);
    };
    pc.oniceconnectionstatechange = async () => {
      if (!ended && pc.iceConnectionState === "failed") {
        signal.send({ type: "restart", sdp: await EVR.offer(pc, { iceRestart: true }) });
      }
    };
    if (!signal.send({ type: "join", sdp: await EVR.offer(pc) })) {
      // The socket dropped meanwhile: nothing reached the box, so the caller still waits.
      pc.close();
      pc = diagnostics.pc = null;
      admitted = false;
      $("admit").disabled = diagnostics.state !== "waiting";
      $("stage-note").textContent = "Not connected to the box just now. Press Admit caller again.";
    }
  }

  /* Observing: four receive-only slots (the caller's audio and video, then the officer's,
     docs/media.md routing); nothing is sent, nothing on the call changes. */
  function observing() {
    mode = diagnostics.mode = "observe";
    $("console-notice").hidden = false;
    if ($("take-over-form")) $("take-over-form").hidden = false;
    $("handover").hidden = true;
    ["chat-text", "admit"].forEach((id) => { $(id).disabled = true; });
  }

  /* Rendered to observe, but nobody else holds the call any more: this page handles it. */
  function handling() {
    mode = diagnostics.mode = "handle";
    $("console-notice").hidden = true;
    if ($("take-over-form")) $("take-over-form").hidden = true;
    $("handover").hidden = false;
    $("chat-text").disabled = false;
  }

  async function observe() {
    admitted = true;
    pc = new RTCPeerConnection({ iceServers: iceServers });
    diagnostics.pc = pc;
    pc.addTransceiver("audio", { direction: "recvonly" });
    EVR.preferCodecs(pc.addTransceiver("video", { direction: "recvonly" }));
    const officer = EVR.extraSlot(pc);
    const remote = new MediaStream();
    EVR.attach($("remote-video"), remote);
    EVR.attach($("guest-video"), officer.stream);
    $("guest-caption").textContent = root.dataset.holder ? "Officer (" + root.dataset.holder + ")" : "Officer";
    $("guest-tile").hidden = false;
    pc.ontrack = (event) => {
      const fromOfficer = event.transceiver === officer.audio || event.transceiver === officer.video;
      (fromOfficer ? officer.stream : remote).addTrack(event.track);
    };
    pc.oniceconnectionstatechange = async () => {
      if (!ended && pc.iceConnectionState === "failed") {
        signal.send({ type: "restart", sdp: await EVR.offer(pc, { iceRestart: true }) });
      }
    };
    signal.send({ type: "join", sdp: await EVR.offer(pc) });
  }

  /* Who is watching: always said to the officer handling the call. */
  function showObservers(observers) {
    const names = observers.map((o) => o.name);
    $("observers").hidden = names.length === 0;
    $("observers").textContent = names.length ? "Observing this call: " + names.join(", ") + "." : "";
  }

  /* The page stops acting on the call and says why; every control is off, links still work. */
  function readOnly(text) {
    ended = true;
    if (signal) signal.close();
    if (pc) pc.close();
    if (stream) stream.getTracks().forEach((t) => t.stop());
    root.querySelectorAll("button, input, textarea, select").forEach((control) => {
      if (control.id !== "fullscreen" && !control.closest("[role=tablist]")) control.disabled = true;
    });
    if ($("take-over-form")) $("take-over-form").hidden = true;
    $("handover").hidden = true;
    $("console-notice").textContent = text;
    $("console-notice").hidden = false;
    $("stage-note").textContent = text;
    $("quality").hidden = true;
    $("recording-indicator").hidden = true;
  }

  /* Every way the box closes this page's socket, in plain words (docs/signalling.md). */
  function onSocket(status, code, reason) {
    if (status === "open") {
      if (diagnostics.closed && !ended) $("stage-note").textContent = "";
      return;
    }
    diagnostics.closed = { code: code, reason: reason || "" };
    if (ended) return;
    if (code === 4000) readOnly("This call is open in another tab or window, so this page has stopped. Reload it to use the call here.");
    else if (code === 4003) readOnly("This page has stopped: " + (reason || "you may no longer act on this call") + ".");
    else if (code === 4004) {
      const who = takenBy ? takenBy.by : (reason || "").replace(/^taken over by /, "") || "A supervisor";
      readOnly(who + " has taken over this call" + (takenBy && takenBy.reason ? ". Reason: " + takenBy.reason : "") + ". This page is read-only.");
    } else if (code === 4005) {
      const to = handedTo ? handedTo.to : (reason || "").replace(/^handed over to /, "") || "a colleague";
      readOnly(to + " has taken the call you handed over. This page is read-only.");
    }
    else if (code === 1008) readOnly("This page sent too many messages and was disconnected. Reload it to continue.");
    else if (code === 1000) finish(diagnostics.state === "connected" ? "ended" : diagnostics.state);
    else $("stage-note").textContent = "Connection to the box lost: reconnecting…";
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
      EVR.attach($("local-video"), stream);
    } else {
      const video = stream.getVideoTracks()[0];
      await videoTransceiver.sender.replaceTrack(null);
      if (video) { stream.removeTrack(video); video.stop(); }
      EVR.attach($("local-video"), null);
    }
    $("local-video").hidden = !on;
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Stop my video" : "Send my video";
  }

  /* Sound only, both ways (the caller's page or this one pressed it, or the caller's page
     switched by itself on a bad signal): the officer's own video, if on, stops going out
     (replaceTrack(null), no renegotiation) and comes back with it. */
  async function soundOnly(on, by, automatic) {
    diagnostics.soundOnly = on;
    const button = $("sound-only-toggle");
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Video back on" : "Sound only";
    const why = automatic ? "caller's signal too weak for video" : by === "caller" ? "caller chose it" : by === "handler" ? "you chose it" : "";
    $("sound-only-both").textContent = "Sound only" + (why ? " – " + why : "");
    $("sound-only-both").hidden = !on;
    const own = stream && stream.getVideoTracks()[0];
    if (videoTransceiver && own) {
      try { await videoTransceiver.sender.replaceTrack(on ? null : own); } catch (error) { /* the call goes on */ }
    }
  }

  /* Messages first: the caller's page puts the messages above the video; here the flag
     says so and the chat is brought forward, with the cursor in it. */
  function textFirst(on) {
    diagnostics.textFirst = on;
    $("text-first-toggle").setAttribute("aria-pressed", String(on));
    $("text-first-flag").hidden = !on;
  }

  function pressTextFirst() {
    const on = !diagnostics.textFirst;
    if (!(signal && signal.send({ type: "text_first", on: on }))) return;
    textFirst(on);
    if (on) {
      const tab = $("tab-chat");
      if (tab) tab.click();
      $("chat-text").focus();
    }
  }

  function pressSoundOnly() {
    const on = !diagnostics.soundOnly;
    if (signal && signal.send({ type: "sound_only", on: on })) soundOnly(on, "handler", false);
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
      const body = await response.json().catch(() => ({}));
      if (!response.ok) toast("Snapshot not taken: " + (body.error || response.status));
      else toast("Snapshot saved");
    } finally {
      button.disabled = diagnostics.state !== "connected";
    }
  }

  let toastTimer = null;
  function toast(text) {
    $("toast").textContent = text;
    $("toast").hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { $("toast").hidden = true; }, 3000);
  }

  /* The strip and the Snapshots tab are kept by lightbox.js. */
  function addSnapshot(message) {
    window.dispatchEvent(new CustomEvent("evr:snapshot", { detail: message }));
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
    guestNames = {};
    present.forEach((g) => { guestNames[g.leg] = g.label + " (" + g.name + ")"; });
    if (tiles) tiles.render();
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

  /* The caller's position in the caller card: as text to copy, and on the force's map
     when a link template is set (docs/configuration.md, EVR_FORCE_MAP_URL). */
  function showLocation(message) {
    const lat = Number(message.latitude), lon = Number(message.longitude);
    $("shared-location").textContent = lat.toFixed(6) + ", " + lon.toFixed(6);
    $("shared-accuracy").textContent = "(within " + Math.round(message.accuracy) + " m)";
    const onGrid = message.gridReference && message.easting !== null && message.northing !== null;
    $("shared-grid").textContent = onGrid ? message.gridReference : "Outside the National Grid";
    $("shared-en").textContent = onGrid ? "(E " + Math.floor(message.easting) + ", N " + Math.floor(message.northing) + ")" : "";
    $("shared-location-row").hidden = false;
    const template = root.dataset.mapUrl;
    if (template) {
      const fill = (name, value) => (text) => text.replace(new RegExp("\\{" + name + "(:[^}]*)?\\}", "g"), encodeURIComponent(value.toFixed(6)));
      $("force-map").href = fill("lon", lon)(fill("lat", lat)(template));
      $("force-map").hidden = false;
    }
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
    if (reason) root.dataset.endReason = reason;
    setState(state || "ended");
    $("admit").hidden = true;
    $("handover").hidden = true;
    if ($("take-over-form")) $("take-over-form").hidden = true;
    if (signal) signal.close();
    if (pc) pc.close();
    if (stream) stream.getTracks().forEach((t) => t.stop());
    $("stage-note").textContent = ENDED_NOTES[reason] || "The call has ended.";
  }

  /* Sound only: the caller's video has shown no new frame for three seconds. */
  function watchVideo() {
    const video = $("remote-video");
    const frames = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
    if (frames !== lastFrames) { lastFrames = frames; stillSince = null; }
    else if (stillSince === null) stillSince = Date.now();
    const live = diagnostics.state === "connected" && !ended;
    const silent = Array.isArray(callerSends) && !callerSends.includes("audio");
    $("sound-only").hidden = silent || !(live && stillSince !== null && Date.now() - stillSince > 3000);
    if (video.videoWidth) $("stage").dataset.orientation = video.videoHeight > video.videoWidth ? "portrait" : "landscape";
  }

  setInterval(() => { tick(); watchVideo(); }, 1000);

  /* The tools' tabs: one panel shown, each scrolling on its own. */
  const tabs = Array.from(document.querySelectorAll("#tools-tabs [role=tab]"));
  function choose(tab) {
    tabs.forEach((other) => {
      const on = other === tab;
      other.setAttribute("aria-selected", String(on));
      other.tabIndex = on ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !on;
    });
    tab.classList.remove("tab--news");
  }
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => choose(tab));
    tab.addEventListener("keydown", (event) => {
      const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = tabs[(index + step + tabs.length) % tabs.length];
      choose(next);
      next.focus();
    });
  });
  choose(tabs.find((tab) => tab.getAttribute("aria-selected") === "true") || tabs[0]);

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else $("stage").requestFullscreen().catch(() => toast("Fullscreen is not available here."));
  }
  document.addEventListener("fullscreenchange", () => {
    $("fullscreen").textContent = document.fullscreenElement ? "Exit fullscreen" : "Fullscreen";
  });

  /* Keys: S snapshot, M mute, F fullscreen (not while typing); Ctrl+Enter sends a message. */
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
    if (typing || event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (document.querySelector("dialog[open]")) return;  // the snapshot viewer has its own keys
    const key = event.key.toLowerCase();
    const button = key === "s" ? $("snapshot") : key === "m" ? $("mute") : null;
    if (key === "f") { event.preventDefault(); toggleFullscreen(); }
    else if (button && !button.disabled) { event.preventDefault(); button.click(); }
  });
  $("chat-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey || !event.shiftKey)) {
      event.preventDefault();
      $("chat-form").requestSubmit();
    }
  });

  /* Leaving the page during a live call asks first. */
  window.addEventListener("beforeunload", (event) => {
    if (diagnostics.state === "connected" && !ended) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  /* Copy buttons in the caller card copy the text they name. */
  document.querySelectorAll("[data-copy-text]").forEach((button) => {
    button.addEventListener("click", async () => {
      const text = $(button.dataset.copyText).textContent;
      try {
        await navigator.clipboard.writeText(text);
        $("copy-status").textContent = "Copied: " + text;
      } catch (error) {
        $("copy-status").textContent = "Not copied: select the text and copy it.";
      }
    });
  });

  /* A ready-made message goes into the box, to send as it is or change first. */
  document.querySelectorAll("[data-preset]").forEach((button) => {
    button.addEventListener("click", () => {
      $("chat-text").value = button.textContent;
      $("chat-text").focus();
    });
  });

  $("fullscreen").addEventListener("click", toggleFullscreen);
  showPill(root.dataset.state);
  showIndicators();

  $("admit").addEventListener("click", admit);
  $("camera").addEventListener("click", toggleCamera);
  $("sound-only-toggle").addEventListener("click", pressSoundOnly);
  $("text-first-toggle").addEventListener("click", pressTextFirst);
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
    $("chat").scrollTop = $("chat").scrollHeight;
  });

  $("handover-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    $("handover-status").textContent = response.ok ? answer.message : "Not offered: " + (answer.error || response.status);
  });

  if ($("take-over-form")) {
    $("take-over-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.target;
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "X-CSRF-Token": csrf },
        credentials: "same-origin",
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) { $("take-over-status").textContent = "Not taken: " + (answer.error || response.status); return; }
      ended = true;  /* the page reloads as the handler's console */
      if (signal) signal.close();
      if (pc) pc.close();
      location.reload();
    });
  }

  if (mode === "read-only") readOnly($("console-notice").textContent);
  else signal = new EVR.Signal("/ws/calls/" + encodeURIComponent(callId), onMessage, onSocket);
})();
