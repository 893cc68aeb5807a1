/* The caller's page: camera check, join, wait, the call, and recovery after a network blip.

   While the officer sends no video (their camera is off by default), the caller's own
   camera is the big picture: it is what the officer sees. Whether the officer's video
   arrives is read from the connection's statistics (frames decoded on their track),
   so it needs nothing from the box. A page reloaded during a call (the box says the
   call is waiting or connected) rejoins by itself; the camera check asks the box now
   and then whether the call has ended meanwhile. After the caller's own End, the ended
   step offers "Rejoin the call" while the box allows it (rejoin.js). */
"use strict";

(function () {
  const _ = window.evrGettext;
  const root = document.getElementById("caller");
  if (!root) return;
  const token = root.dataset.token;
  const neutral = root.dataset.neutral === "yes";
  const $ = (id) => document.getElementById(id);
  const steps = ["step-check", "step-wait", "step-call", "step-ended"];
  const show = (step) => steps.forEach((s) => { $(s).hidden = s !== step; });
  const LIVE = ["waiting", "connected"];

  let stream = null;
  let facing = "environment";
  let pc = null;
  let signal = null;
  let iceServers = [];
  let joined = false;
  let ended = false;
  let restarting = false;
  let officerName = root.dataset.officer || "";
  let connectedAt = null;
  let officerTrack = null;
  let guestSlots = 1; // until the box's hello says how many guests a call may have
  let guestNames = {}; // leg → "Interpreter (Ana Silva)"
  let tiles = null;
  let lastFrames = 0;
  let framesSeenAt = 0;
  let bannerTarget = null;
  const diagnostics = {
    pc: null, audioOnly: false, state: root.dataset.state, officerVideo: false, rejoined: false,
    soundOnly: false, soundOnlyAutomatic: false, network: "", networkCandidates: [], textFirst: false,
    noMicrophone: false,
  };
  window.evrCaller = diagnostics;

  /* The camera and the microphone, or what of them the phone allows: without a microphone
     the caller joins to show the scene and type, with neither to watch, listen and type. */
  async function camera(facingMode) {
    const video = { facingMode: { ideal: facingMode }, width: { ideal: 1280 }, height: { ideal: 720 } };
    for (const constraints of [{ audio: true, video: video }, { audio: true }, { video: video }]) {
      try {
        return await navigator.mediaDevices.getUserMedia(constraints);
      } catch (error) { /* try with less */ }
    }
    return new MediaStream();
  }

  function checkSays() {
    if (!diagnostics.noMicrophone) {
      return diagnostics.audioOnly
        ? _("Your camera is not available. You can still join with sound only.")
        : _("You should see what your camera sees. When you are ready, join the call.");
    }
    if (!diagnostics.audioOnly) {
      return neutral
        ? _("Your microphone is not available. You can still join: they will see what your camera shows, and you can type messages.")
        : _("Your microphone is not available. You can still join: the officer will see what your camera shows, and you can type messages.");
    }
    return neutral
      ? _("Your camera and microphone are not available. You can still join to see and hear them and type messages.")
      : _("Your camera and microphone are not available. You can still join to see and hear the officer and type messages.");
  }

  async function start() {
    stream = await camera(facing);
    diagnostics.audioOnly = !stream.getVideoTracks().length;
    diagnostics.noMicrophone = !stream.getAudioTracks().length;
    EVR.attach($("preview"), stream);
    EVR.attach($("self"), stream);
    $("stage").dataset.soundOnly = String(diagnostics.audioOnly);
    $("switch-camera-call").hidden = diagnostics.audioOnly;
    $("stage").dataset.noMicrophone = String(diagnostics.noMicrophone);
    $("sound-only-toggle").hidden = diagnostics.audioOnly || diagnostics.noMicrophone;
    $("mute").hidden = diagnostics.noMicrophone;
    $("no-microphone-note").hidden = !diagnostics.noMicrophone;
    $("check-status").textContent = checkSays();
    $("blocked-help").open = diagnostics.audioOnly || diagnostics.noMicrophone;
    $("switch-camera").disabled = diagnostics.audioOnly;
    $("join").disabled = false;
    if (LIVE.includes(root.dataset.state)) {
      diagnostics.rejoined = true;
      join();
    } else {
      checkNetwork();
    }
  }

  /* Can video get out of this network? Told before joining, with what to try if not
     (network-check.js); the caller may join either way. */
  async function checkNetwork() {
    let servers = [];
    try {
      servers = JSON.parse(root.dataset.iceServers || "[]");
    } catch (error) { return; }
    if (!servers.length || !window.EVRNetworkCheck || !window.RTCPeerConnection) return;
    const note = $("network-status");
    note.textContent = _("Checking your connection…");
    note.hidden = false;
    let result = "blocked";
    try {
      const reached = await window.EVRNetworkCheck.reach(servers, 6000);
      result = reached.verdict;
      diagnostics.networkCandidates = reached.found;
    } catch (error) { /* counted as blocked */ }
    diagnostics.network = result;
    note.hidden = !result;
    note.textContent = result === "ok"
      ? _("Your connection can reach the video service.")
      : _("Your connection may block video calls. If the call does not connect, try Wi-Fi instead of mobile data, or the other way round.");
  }

  async function switchCamera() {
    if (diagnostics.audioOnly) return;
    facing = facing === "environment" ? "user" : "environment";
    let next;
    try {
      next = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: facing } } });
    } catch (error) { return; }
    const track = next.getVideoTracks()[0];
    const old = stream.getVideoTracks()[0];
    if (pc) {
      const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
      if (sender) await sender.replaceTrack(track);
    }
    if (old) { stream.removeTrack(old); old.stop(); }
    stream.addTrack(track);
    EVR.attach($("preview"), stream);
    EVR.attach($("self"), stream);
  }

  function newPeer() {
    const peer = new RTCPeerConnection({ iceServers: iceServers });
    // No microphone: the caller still hears the officer.
    if (!stream.getAudioTracks().length) peer.addTransceiver("audio", { direction: "recvonly" });
    stream.getTracks().forEach((track) => {
      const transceiver = peer.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
      if (track.kind === "video") EVR.preferCodecs(transceiver);
    });
    if (!stream.getVideoTracks().length) {
      EVR.preferCodecs(peer.addTransceiver("video", { direction: "recvonly" }));
    }
    const forGuests = EVR.guestSlots(peer, guestSlots);
    if (tiles) tiles.route({}); // a new connection: the old one's tiles go
    tiles = new EVR.Tiles(peer, $("guest-tile"), (leg) => guestNames[leg] || "");
    const remote = new MediaStream();
    EVR.attach($("remote"), remote);
    peer.ontrack = (event) => {
      const forGuest = forGuests.indexOf(event.transceiver) >= 0;
      if (!forGuest) remote.addTrack(event.track);
      if (!forGuest && event.track.kind === "video") officerTrack = event.track;
      if (!forGuest) playSound();
    };
    peer.oniceconnectionstatechange = () => {
      if (ended) return;
      const state = peer.iceConnectionState;
      if (state === "failed" || state === "disconnected") {
        $("call-note").textContent = _("Reconnecting…");
        setTimeout(() => { if (peer.iceConnectionState !== "connected") restartIce(); }, 1500);
      } else if (state === "connected" || state === "completed") {
        $("call-note").textContent = "";
      }
    };
    diagnostics.pc = peer;
    return peer;
  }

  /* A reloaded page has no tap behind it: if the phone will not play sound yet, ask. */
  function playSound() {
    const played = $("remote").play();
    if (played && played.catch) {
      played.then(() => { $("sound-on").hidden = true; }).catch(() => { $("sound-on").hidden = false; });
    }
  }

  async function restartIce() {
    if (restarting || ended || !pc) return;
    restarting = true;
    try {
      const sdp = await EVR.offer(pc, { iceRestart: true });
      signal.send({ type: "restart", sdp: sdp });
    } finally {
      restarting = false;
    }
  }

  async function join() {
    if (joined) return;
    $("join").disabled = true;
    joined = true;
    show("step-wait");
    signal = new EVR.Signal("/ws/v/" + encodeURIComponent(token), onMessage, onStatus);
  }

  /* A new page joins with a fresh connection; a page whose socket dropped and came back
     keeps its connection and restarts ICE on it. */
  async function sendOffer() {
    if (pc && pc.remoteDescription) {
      signal.send({ type: "restart", sdp: await EVR.offer(pc, { iceRestart: true }) });
      return;
    }
    if (!pc) pc = newPeer();
    signal.send({ type: "join", sdp: await EVR.offer(pc) });
  }

  function onStatus(status) {
    if (status === "closed" && !ended) $("call-note").textContent = _("Reconnecting…");
  }

  /* Guests, and a supervisor or a responder on a view-only link watching when the force
     shows them (the box leaves them out of what this page is sent otherwise). */
  function showGuests(guests, observers, viewers) {
    guestNames = {};
    guests.forEach((g) => { guestNames[g.leg] = g.label + " (" + g.name + ")"; });
    if (tiles) tiles.render();
    const watching = (observers || []).length
      ? (neutral
        ? _("Someone else is also listening.")
        : _("Also watching: a supervisor, %(names)s.", { names: observers.map((o) => o.name).join("; ") }))
      : "";
    const viewing = (viewers || []).length
      ? (neutral
        ? _("Someone else is also listening.")
        : _("Also watching: an officer responding to your report, %(names)s.", { names: viewers.map((v) => v.name).join("; ") }))
      : "";
    const also = guests.length
      ? _("Also on the call: %(guests)s.", { guests: guests.map((g) => g.label + ", " + g.name).join("; ") })
      : "";
    const text = [also, watching, viewing].filter((t, i, all) => t && all.indexOf(t) === i).join(" ");
    $("guest-notice").hidden = !text;
    $("guest-notice").textContent = text;
  }

  /* While the call passes to another officer the caller's media goes on; say so. */
  let officerChanging = false;
  function officerPresent(present) {
    const note = $("officer-note");
    note.hidden = present;
    if (present) officerChanging = false;
    note.textContent = present ? "" : officerChanging
      ? (neutral ? _("Someone else is joining the call. Stay on this page.") : _("Another officer is joining the call. Stay on this page."))
      : (neutral
        ? _("Their connection has dropped. Stay on this page – they will come back.")
        : _("The officer's connection has dropped. Stay on this page – they will come back."));
  }

  function showBar() {
    const who = officerName && !neutral ? _("Connected to %(name)s", { name: officerName }) : _("Connected");
    $("call-who").textContent = who;
    $("call-timer").textContent = EVR.formatDuration(connectedAt ? (Date.now() - connectedAt.getTime()) / 1000 : 0);
  }

  /* Messages first (the officer chose it: a deaf caller, or one who cannot speak safely):
     the messages move above the video in the page itself, so reading and tab order follow,
     and the cursor goes to the message box once. */
  let chatHome = null;
  function textFirst(on) {
    if (on === diagnostics.textFirst) return;
    diagnostics.textFirst = on;
    const card = $("chat-card");
    if (!chatHome) chatHome = card.previousElementSibling;
    $("text-first-note").hidden = !on;
    if (on) {
      $("stage").before(card);
      $("chat-text").focus();
    } else {
      chatHome.after(card);
    }
  }

  function applyState(message) {
    diagnostics.state = message.state;
    if (typeof message.soundOnly === "boolean" && message.soundOnly !== diagnostics.soundOnly) {
      soundOnly(message.soundOnly, "", false, false);
    }
    if (typeof message.textFirst === "boolean") textFirst(message.textFirst);
    if (message.guests) showGuests(message.guests, message.observers, message.viewers);
    if (message.officer) officerName = message.officer;
    if (message.connectedAt) connectedAt = new Date(message.connectedAt);
    if (typeof message.recording === "boolean" && message.recording === $("recording-indicator").hidden) {
      $("recording-indicator").hidden = !message.recording;
      // Told to a screen reader once when it changes (WCAG 4.1.3), not at every state message.
      $("recording-status").textContent = message.recording ? _("This call is being recorded.") : _("Recording has stopped.");
    }
    if (message.state === "connected") {
      show("step-call");
      keepScreenOn();
      if (message.present) officerPresent(message.present.includes("handler"));
    } else if (LIVE.includes(message.state)) {
      show("step-wait");
    }
    showBar();
  }

  function banner(text, target, button) {
    bannerTarget = target;
    $("call-banner-text").textContent = text;
    $("call-banner-go").textContent = button;
    $("call-banner").hidden = false;
  }

  async function onMessage(message) {
    switch (message.type) {
      case "hello":
        iceServers = message.iceServers || [];
        if (typeof message.guestSlots === "number") guestSlots = message.guestSlots;
        applyState(message);
        await sendOffer();
        if (tiles && message.slots) tiles.route(message.slots); // changed while the socket was away
        if (diagnostics.soundOnly) soundOnly(true, "", diagnostics.soundOnlyAutomatic, false);
        if (root.dataset.location !== "no" && navigator.geolocation) shareLocation();
        break;
      case "answer":
        await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        break;
      case "state":
        applyState(message);
        break;
      case "slots":
        if (tiles) tiles.route(message.slots);
        break;
      case "presence":
        if (message.role === "handler" && diagnostics.state === "connected") officerPresent(message.present);
        break;
      case "sound_only":
        soundOnly(message.on, message.by, message.automatic, false);
        break;
      case "text_first":
        textFirst(message.on);
        break;
      case "officer_changing":
        officerChanging = true;
        if (diagnostics.state === "connected") officerPresent(false);
        break;
      case "chat":
        EVR.appendChat($("chat"), message.from === "caller" ? _("You") : message.from === "handler" ? _("Officer") : message.name, message.text, message.from === "caller");
        /* Always, unless the caller is typing a message: they are looking at the chat. */
        if (message.from !== "caller" && document.activeElement !== $("chat-text")) {
          banner(_("New message: %(text)s", { text: message.text }), $("chat-text"), _("Read it"));
        }
        break;
      case "statement":
        window.dispatchEvent(new CustomEvent("evr:statement", { detail: message.statement }));
        if (message.statement && message.statement.state === "sent") {
          banner(_("Your statement is ready to read and sign."), $("statement-panel"), _("Read statement"));
        }
        break;
      case "ended":
        finish();
        break;
      case "error":
        /* The box's reason is for the log; the caller reads it in their language. */
        $("call-note").textContent = message.code === "rate_limited"
          ? _("You are sending messages too quickly. Wait a moment, then try again.")
          : message.code === "chat_full"
            ? _("This call cannot take any more messages. Talk on the phone instead.")
            : _("Something went wrong. If it keeps happening, tell the person on the phone.");
        break;
    }
  }

  /* Whose video is big: the officer's while it arrives, else the caller's own. */
  async function watchOfficerVideo() {
    if (ended) return;
    if (pc && officerTrack) {
      let frames = 0;
      try {
        (await pc.getStats(officerTrack)).forEach((r) => {
          if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0;
        });
      } catch (error) { /* an old browser: keep the caller's own view */ }
      if (frames > lastFrames) framesSeenAt = Date.now();
      lastFrames = frames;
    }
    const on = Date.now() - framesSeenAt < 2500;
    if (on !== diagnostics.officerVideo) {
      diagnostics.officerVideo = on;
      $("stage").dataset.view = on ? "officer" : "self";
    }
    if (connectedAt && diagnostics.state === "connected") showBar();
  }

  async function status() {
    const response = await fetch("/v/" + encodeURIComponent(token) + "/status", { credentials: "same-origin", cache: "no-store" });
    return response.json();
  }

  /* Before joining there is no socket: ask the box whether the call has ended meanwhile. */
  async function checkEnded() {
    if (joined || ended) return;
    try {
      if (!(await status()).live) finish();
    } catch (error) { /* try again later */ }
  }

  /* After the caller's own End the box may let them back for a while (rejoin.js shows
     it); the End reaches the box a moment after this page shows the ended step. */
  async function offerRejoin(tries) {
    try {
      const body = await status();
      if (body.live && tries > 0) { setTimeout(() => offerRejoin(tries - 1), 700); return; }
      if (!body.live && window.evrRejoin) window.evrRejoin(body.rejoinSeconds || 0);
    } catch (error) { /* no offer: the page says the call has ended */ }
  }

  /* Once, or (if the caller agreed to it being kept up to date) each time the phone
     moves, at most once per data-location-every seconds: the box drops faster fixes. */
  let locationWatch = null;
  function shareLocation() {
    const send = (position) => signal.send({
      type: "location",
      latitude: position.coords.latitude,
      longitude: position.coords.longitude,
      accuracy: position.coords.accuracy,
    });
    const options = { enableHighAccuracy: true, timeout: 15000 };
    if (root.dataset.location !== "live") {
      navigator.geolocation.getCurrentPosition(send, () => {}, options);
      return;
    }
    if (locationWatch !== null) return;
    const every = 1000 * Number(root.dataset.locationEvery || 15);
    let sentAt = 0, pending = null, timer = null;
    const flush = () => {
      timer = null;
      if (pending === null || ended) return;
      sentAt = Date.now();
      send(pending);
      pending = null;
    };
    locationWatch = navigator.geolocation.watchPosition((position) => {
      pending = position;
      if (timer === null) timer = setTimeout(flush, Math.max(0, sentAt + every - Date.now()));
    }, () => {}, options);
  }

  /* Sound only, both ways: the caller's camera stops going out (replaceTrack(null), no
     renegotiation), the officer's page is told and does likewise; either side presses it.
     An `automatic` switch is the box's, for the caller's line (by "box", undone by the box
     when the line carries video again). `by` says who switched: "caller" is this page. */
  let soundOnlyRetry = null;
  async function soundOnly(on, by, automatic, tell) {
    diagnostics.soundOnly = on;
    diagnostics.soundOnlyAutomatic = on && automatic;
    const button = $("sound-only-toggle");
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? _("Turn video back on") : _("Sound only");
    button.hidden = diagnostics.audioOnly || diagnostics.noMicrophone;
    const note = $("sound-only-note");
    note.hidden = !on;
    note.textContent = !on ? "" : automatic
      ? _("Your signal is too weak for video. The call carries on with sound only; video comes back when the signal improves.")
      : by === "handler"
        ? (neutral ? _("They switched the call to sound only.") : _("The officer switched the call to sound only."))
        : _("Sound only: you have turned video off. They can still hear you.");
    $("stage").dataset.soundOnly = String(on || diagnostics.audioOnly);
    clearTimeout(soundOnlyRetry);
    if (on && automatic && by === "caller") soundOnlyRetry = setTimeout(() => switchSoundOnly(false, true), 30000);
    if (tell && signal) signal.send({ type: "sound_only", on: on, automatic: automatic });
    // The first video slot carries the camera (newPeer); its track may be null by now.
    const slot = pc && pc.getTransceivers().find((t) => t.receiver.track.kind === "video");
    const camera = stream && stream.getVideoTracks()[0];
    if (slot && camera) {
      try { await slot.sender.replaceTrack(on ? null : camera); } catch (error) { /* the call goes on */ }
    }
  }

  function switchSoundOnly(on, automatic) {
    if (on === diagnostics.soundOnly) return;
    soundOnly(on, "caller", automatic, true);
  }

  function finish() {
    ended = true;
    if (locationWatch !== null) navigator.geolocation.clearWatch(locationWatch);
    if (signal) signal.close();
    if (pc) pc.close();
    letScreenSleep();
    if (stream) stream.getTracks().forEach((t) => t.stop());
    if ($("end-dialog").open) $("end-dialog").close();
    $("call-banner").hidden = true;
    diagnostics.state = "ended";
    show("step-ended");
    if (!neutral) offerRejoin(5);
  }

  $("join").addEventListener("click", join);
  $("switch-camera").addEventListener("click", switchCamera);
  $("switch-camera-call").addEventListener("click", switchCamera);
  $("mute").addEventListener("click", () => {
    const button = $("mute");
    const muted = button.getAttribute("aria-pressed") !== "true";
    stream.getAudioTracks().forEach((t) => { t.enabled = !muted; });
    button.setAttribute("aria-pressed", String(muted));
    button.textContent = muted ? _("Unmute") : _("Mute");
  });
  $("sound-on").addEventListener("click", playSound);
  $("sound-only-toggle").addEventListener("click", () => switchSoundOnly(!diagnostics.soundOnly, false));
  $("end").addEventListener("click", () => $("end-dialog").showModal());
  $("end-cancel").addEventListener("click", () => $("end-dialog").close());
  $("end-confirm").addEventListener("click", () => {
    if (signal) signal.send({ type: "end" });
    finish();
  });
  $("call-banner-go").addEventListener("click", () => {
    $("call-banner").hidden = true;
    if (bannerTarget) {
      const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      bannerTarget.scrollIntoView({ behavior: still ? "auto" : "smooth", block: "center" });
      if (bannerTarget.focus) bannerTarget.focus({ preventScroll: true });
    }
  });
  $("call-banner-close").addEventListener("click", () => { $("call-banner").hidden = true; });
  /* Once the caller has scrolled to what the banner points at, it has done its job. */
  window.addEventListener("scroll", () => {
    if ($("call-banner").hidden || !bannerTarget) return;
    const box = bannerTarget.getBoundingClientRect();
    if (box.top >= 0 && box.bottom <= window.innerHeight - $("call-banner").offsetHeight) $("call-banner").hidden = true;
  }, { passive: true });
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("chat-text").value.trim();
    if (text && signal.send({ type: "chat", text: text })) $("chat-text").value = "";
  });
  window.addEventListener("pagehide", () => { if (signal && !joined) signal.close(); });
  /* Quick exit (quick-exit.js): hang up at once, camera off, before the page goes. The
     box ends the call on the quick exit's beacon, so the officer learns why. */
  window.addEventListener("evr:quick-exit", finish);

  /* iOS ends or mutes the camera while the caller reads the SMS or locks the phone: on
     their return a fresh camera track takes the old one's place on the same sender
     (replaceTrack: no new offer, the officer's picture just resumes). */
  let cameraComing = false;
  async function cameraBack() {
    if (document.visibilityState !== "visible" || !stream || !pc || ended || diagnostics.audioOnly) return;
    const old = stream.getVideoTracks()[0];
    const sender = pc.getSenders().find((s) => s.track === old);
    /* Only the track the system took away: a camera the caller turned off stays off. */
    if (!old || !sender || cameraComing || (old.readyState === "live" && !old.muted)) return;
    cameraComing = true;
    let fresh;
    try {
      fresh = (await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: facing } } })).getVideoTracks()[0];
      await sender.replaceTrack(fresh);
    } catch (error) {
      if (fresh) fresh.stop();
      return;
    } finally {
      cameraComing = false;
    }
    stream.removeTrack(old);
    old.stop();
    stream.addTrack(fresh);
    EVR.attach($("preview"), stream);
    EVR.attach($("self"), stream);
    diagnostics.cameraBack = (diagnostics.cameraBack || 0) + 1;
  }

  /* The screen stays on while the call is connected (the lock lapses when the page is
     hidden, so it is asked for again on return). */
  let wakeLock = null;
  async function keepScreenOn() {
    if (!navigator.wakeLock || wakeLock || ended || diagnostics.state !== "connected" || document.visibilityState !== "visible") return;
    try {
      wakeLock = await navigator.wakeLock.request("screen");
      wakeLock.addEventListener("release", () => { wakeLock = null; });
    } catch (error) { /* refused (low battery, no permission): the call goes on */ }
  }

  function letScreenSleep() {
    if (wakeLock) wakeLock.release().catch(() => {});
  }

  /* iOS plays a call's sound only if playback began in a tap: start it in the join tap. */
  function unlockSound() {
    const played = $("remote").play();
    if (played && played.catch) played.catch(() => {});
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    cameraBack();
    keepScreenOn();
  });
  $("join").addEventListener("click", unlockSound);

  /* A browser without WebRTC (some WebKit builds, old in-app browsers) cannot join: say
     what the caller can do instead rather than ask for a camera it cannot send. */
  function canCall() {
    if (typeof window.RTCPeerConnection === "function") return true;
    $("step-check").hidden = true;
    $("step-no-webrtc").hidden = false;
    diagnostics.state = "no-webrtc";
    return false;
  }

  setInterval(watchOfficerVideo, 1000);
  setInterval(checkEnded, 5000);
  if (canCall()) start();
})();
