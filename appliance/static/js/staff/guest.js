/* A guest's page (interpreter, second officer, supervisor): send own camera and
   microphone; receive the caller on the first slot, the officer on the second, and
   each other guest on one more (a tile each, as the box's "slots" message says). */
"use strict";

(function () {
  const _ = window.evrGettext;
  const root = document.getElementById("guest");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  let stream = null;
  let pc = null;
  let signal = null;
  let iceServers = [];
  let left = false;
  let guestSlots = 1; // the other guests, with this one, the box's hello says
  let guestNames = {}; /* leg → "Second officer (PC 12 Byrne)" */
  let tiles = null;
  const diagnostics = { pc: null, state: "joining" };
  window.evrGuest = diagnostics;

  async function start() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    } catch (error) {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch (again) {
        $("guest-status").textContent = _("We could not use your microphone. Allow it for this site and reload.");
        return;
      }
    }
    EVR.attach($("guest-preview"), stream);
    $("guest-status").textContent = _("When you are ready, join.");
    $("guest-join").disabled = false;
  }

  function newPeer() {
    const peer = new RTCPeerConnection({ iceServers: iceServers });
    const caller = new MediaStream();
    peer.addTransceiver(stream.getAudioTracks()[0] || "audio", { direction: "sendrecv", streams: [stream] });
    const video = stream.getVideoTracks()[0];
    EVR.preferCodecs(peer.addTransceiver(video || "video", { direction: video ? "sendrecv" : "recvonly", streams: [stream] }));
    const officer = EVR.extraSlot(peer);
    const others = EVR.guestSlots(peer, Math.max(0, guestSlots - 1));
    tiles = new EVR.Tiles(peer, $("guest-other"), (leg) => guestNames[leg] || "");
    EVR.attach($("guest-remote-caller"), caller);
    EVR.attach($("guest-remote-officer"), officer.stream);
    peer.ontrack = (event) => {
      if (others.indexOf(event.transceiver) >= 0) return; // the other guests' tiles play these
      const second = event.transceiver === officer.audio || event.transceiver === officer.video;
      (second ? officer.stream : caller).addTrack(event.track);
    };
    diagnostics.pc = peer;
    return peer;
  }

  /* The other guests on the call, named on their tiles. */
  function nameGuests(guests) {
    guestNames = {};
    (guests || []).forEach((g) => { guestNames[g.leg] = g.label + " (" + g.name + ")"; });
    if (tiles) tiles.render();
  }

  function finish(title, text) {
    left = true;
    diagnostics.state = "left";
    if (signal) signal.close();
    if (pc) pc.close();
    if (stream) stream.getTracks().forEach((t) => t.stop());
    $("guest-call").hidden = true;
    $("guest-check").hidden = true;
    $("guest-ended").hidden = false;
    if (title) $("guest-ended-title").textContent = title;
    if (text) $("guest-ended-text").textContent = text;
  }

  async function onMessage(message) {
    switch (message.type) {
      case "hello":
        iceServers = message.iceServers || [];
        if (typeof message.guestSlots === "number") guestSlots = message.guestSlots;
        nameGuests(message.guests);
        if (!pc) pc = newPeer();
        if (message.slots) tiles.route(message.slots); // changed while the socket was away
        signal.send({ type: "join", sdp: await EVR.offer(pc) });
        break;
      case "answer":
        await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        diagnostics.state = "joined";
        $("guest-check").hidden = true;
        $("guest-call").hidden = false;
        EVR.attach($("guest-self"), stream);
        break;
      case "state":
        nameGuests(message.guests);
        break;
      case "slots":
        if (tiles) tiles.route(message.slots);
        break;
      case "ended":
        finish(_("The call has ended"), _("Thank you. You can close this page."));
        break;
      case "error":
        $("guest-note").textContent = _("Something went wrong. If it keeps happening, tell the officer.");
        break;
    }
  }

  function onStatus(status, code) {
    if (status === "closed" && code === 4001 && !left) {
      finish(_("The officer ended your part in the call"), _("Thank you. You can close this page."));
    }
  }

  $("guest-join").addEventListener("click", () => {
    $("guest-join").disabled = true;
    signal = new EVR.Signal("/ws/g/" + encodeURIComponent(root.dataset.token), onMessage, onStatus);
  });
  $("guest-mute").addEventListener("click", () => {
    const button = $("guest-mute");
    const muted = button.getAttribute("aria-pressed") !== "true";
    stream.getAudioTracks().forEach((t) => { t.enabled = !muted; });
    button.setAttribute("aria-pressed", String(muted));
    button.textContent = muted ? _("Unmute") : _("Mute");
  });
  $("guest-leave").addEventListener("click", () => {
    if (signal) signal.send({ type: "end" });
    finish();
  });

  start();
})();
