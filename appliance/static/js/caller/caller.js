/* The caller's page: camera check, join, wait, the call, and recovery after a network blip. */
"use strict";

(function () {
  const root = document.getElementById("caller");
  if (!root) return;
  const token = root.dataset.token;
  const $ = (id) => document.getElementById(id);
  const steps = ["step-check", "step-wait", "step-call", "step-ended"];
  const show = (step) => steps.forEach((s) => { $(s).hidden = s !== step; });

  let stream = null;
  let facing = "environment";
  let pc = null;
  let signal = null;
  let iceServers = [];
  let joined = false;
  let ended = false;
  let restarting = false;
  const diagnostics = { pc: null, audioOnly: false, state: root.dataset.state };
  window.evrCaller = diagnostics;

  async function camera(facingMode) {
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: { facingMode: { ideal: facingMode }, width: { ideal: 1280 }, height: { ideal: 720 } },
      });
    } catch (error) {
      const audioOnly = await navigator.mediaDevices.getUserMedia({ audio: true });
      diagnostics.audioOnly = true;
      $("check-status").textContent = "Your camera is not available. You can still join with sound only.";
      return audioOnly;
    }
  }

  async function start() {
    try {
      stream = await camera(facing);
    } catch (error) {
      $("check-status").textContent = "We could not use your microphone. Check your phone's settings for this website, then reload the page.";
      return;
    }
    $("preview").srcObject = stream;
    $("self").srcObject = stream;
    if (!diagnostics.audioOnly) {
      $("check-status").textContent = "You should see what your camera sees. When you are ready, join the call.";
      $("switch-camera").disabled = false;
    }
    $("join").disabled = false;
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
    $("preview").srcObject = stream;
    $("self").srcObject = stream;
  }

  function newPeer() {
    const peer = new RTCPeerConnection({ iceServers: iceServers });
    stream.getTracks().forEach((track) => {
      const transceiver = peer.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
      if (track.kind === "video") EVR.preferCodecs(transceiver);
    });
    if (!stream.getVideoTracks().length) {
      EVR.preferCodecs(peer.addTransceiver("video", { direction: "recvonly" }));
    }
    const guest = EVR.extraSlot(peer);
    const remote = new MediaStream();
    $("remote").srcObject = remote;
    $("guest-video").srcObject = guest.stream;
    peer.ontrack = (event) => {
      const forGuest = event.transceiver === guest.audio || event.transceiver === guest.video;
      (forGuest ? guest.stream : remote).addTrack(event.track);
    };
    peer.oniceconnectionstatechange = () => {
      if (ended) return;
      const state = peer.iceConnectionState;
      if (state === "failed" || state === "disconnected") {
        $("call-note").textContent = "Reconnecting…";
        setTimeout(() => { if (peer.iceConnectionState !== "connected") restartIce(); }, 1500);
      } else if (state === "connected" || state === "completed") {
        $("call-note").textContent = "";
      }
    };
    diagnostics.pc = peer;
    return peer;
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
    if (status === "closed" && !ended) $("call-note").textContent = "Reconnecting…";
  }

  function showGuests(guests) {
    $("guest-tile").hidden = !guests.length;
    $("guest-caption").textContent = guests.length ? guests[0].label + " (" + guests[0].name + ")" : "";
    $("guest-notice").hidden = !guests.length;
    $("guest-notice").textContent = guests.length
      ? "Also on the call: " + guests.map((g) => g.label + ", " + g.name).join("; ") + "."
      : "";
  }

  function applyState(message) {
    diagnostics.state = message.state;
    if (message.guests) showGuests(message.guests);
    if (typeof message.recording === "boolean") $("recording-indicator").hidden = !message.recording;
    if (message.state === "connected") {
      show("step-call");
    } else if (message.state === "waiting" || message.state === "invited") {
      show("step-wait");
    }
  }

  async function onMessage(message) {
    switch (message.type) {
      case "hello":
        iceServers = message.iceServers || [];
        applyState(message);
        await sendOffer();
        if (root.dataset.location === "yes" && navigator.geolocation) shareLocation();
        break;
      case "answer":
        await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        break;
      case "state":
        applyState(message);
        break;
      case "chat":
        EVR.appendChat($("chat"), message.from === "caller" ? "You" : message.from === "handler" ? "Officer" : message.name, message.text, message.from === "caller");
        break;
      case "statement":
        window.dispatchEvent(new CustomEvent("evr:statement", { detail: message.statement }));
        break;
      case "ended":
        finish();
        break;
      case "error":
        $("call-note").textContent = "Something went wrong: " + message.message;
        break;
    }
  }

  function shareLocation() {
    navigator.geolocation.getCurrentPosition((position) => {
      signal.send({
        type: "location",
        latitude: position.coords.latitude,
        longitude: position.coords.longitude,
        accuracy: position.coords.accuracy,
      });
    }, () => {}, { enableHighAccuracy: true, timeout: 15000 });
  }

  function finish() {
    ended = true;
    if (signal) signal.close();
    if (pc) pc.close();
    if (stream) stream.getTracks().forEach((t) => t.stop());
    diagnostics.state = "ended";
    show("step-ended");
  }

  $("join").addEventListener("click", join);
  $("switch-camera").addEventListener("click", switchCamera);
  $("switch-camera-call").addEventListener("click", switchCamera);
  $("mute").addEventListener("click", () => {
    const button = $("mute");
    const muted = button.getAttribute("aria-pressed") !== "true";
    stream.getAudioTracks().forEach((t) => { t.enabled = !muted; });
    button.setAttribute("aria-pressed", String(muted));
    button.textContent = muted ? "Unmute" : "Mute";
  });
  $("end").addEventListener("click", () => {
    signal.send({ type: "end" });
    finish();
  });
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("chat-text").value.trim();
    if (text && signal.send({ type: "chat", text: text })) $("chat-text").value = "";
  });
  window.addEventListener("pagehide", () => { if (signal && !joined) signal.close(); });
  /* Quick exit (quick-exit.js): hang up at once, camera off, before the page goes. The
     box ends the call on the quick exit's beacon, so the officer learns why. */
  window.addEventListener("evr:quick-exit", finish);

  start();
})();
