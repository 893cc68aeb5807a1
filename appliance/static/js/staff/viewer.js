/* A responder's live view (a view-only link): receive the caller's camera and
   microphone, send nothing. The page explains every way it stops (docs/signalling.md). */
"use strict";

(function () {
  const root = document.getElementById("viewer");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  let pc = null;
  let signal = null;
  let iceServers = [];
  let stopped = false;
  const diagnostics = { pc: null, state: "connecting", closeCode: null, closeReason: "" };
  window.evrViewer = diagnostics;

  function newPeer() {
    const peer = new RTCPeerConnection({ iceServers: iceServers });
    const caller = new MediaStream();
    peer.addTransceiver("audio", { direction: "recvonly" });
    EVR.preferCodecs(peer.addTransceiver("video", { direction: "recvonly" }));
    EVR.attach($("viewer-remote"), caller);
    peer.ontrack = (event) => caller.addTrack(event.track);
    diagnostics.pc = peer;
    return peer;
  }

  function finish(title, text) {
    stopped = true;
    diagnostics.state = "stopped";
    if (signal) signal.close();
    if (pc) pc.close();
    $("viewer-call").hidden = true;
    $("viewer-ended").hidden = false;
    $("viewer-ended-title").textContent = title;
    $("viewer-ended-text").textContent = text;
  }

  async function onMessage(message) {
    switch (message.type) {
      case "hello":
        iceServers = message.iceServers || [];
        if (pc) pc.close();
        pc = newPeer();
        signal.send({ type: "join", sdp: await EVR.offer(pc) });
        break;
      case "answer":
        await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        diagnostics.state = "watching";
        $("viewer-note").textContent = "";
        break;
      case "ended":
        finish("The call has ended", "The link ended with the call. You can close this page.");
        break;
      case "error":
        $("viewer-note").textContent = "Something went wrong: " + message.message;
        break;
    }
  }

  function onStatus(status, code, reason) {
    if (status !== "closed" || stopped) return;
    diagnostics.closeCode = code;
    diagnostics.closeReason = reason || "";
    if (code === 4006) finish("This link was revoked", "The call handler stopped this link. Ask them for a new one if you still need it.");
    else if (code === 4007) finish("This link no longer works", "The link was refused: " + (reason || "ask the call handler for a new one") + ".");
    else if (code === 1000) finish("The call has ended", "The link ended with the call. You can close this page.");
    else $("viewer-note").textContent = "Reconnecting…";
  }

  $("viewer-leave").addEventListener("click", () => {
    if (signal) signal.send({ type: "end" });
    finish("You have stopped watching", "Open the link again on this device to watch again while the call lasts.");
  });

  signal = new EVR.Signal(root.dataset.socket, onMessage, onStatus);
})();
