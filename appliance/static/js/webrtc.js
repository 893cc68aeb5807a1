/* Shared by the caller page and the handler console: signalling socket and peer helpers.
   The box does not trickle ICE, so an offer is sent once gathering is complete. */
"use strict";

window.EVR = (function () {
  function socketUrl(path) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + location.host + path;
  }

  /* Close codes after which reconnecting cannot help (docs/signalling.md, "Close codes"):
     ended, flooding, replaced by another page, removed, no longer allowed, taken over,
     handed over, a viewer's link revoked or refused. */
  const FINAL_CLOSES = [1000, 1008, 4000, 4001, 4003, 4004, 4005, 4006, 4007];

  /* A signalling socket that reconnects with backoff until closed on purpose. */
  class Signal {
    constructor(path, onMessage, onStatus) {
      this.path = path;
      this.onMessage = onMessage;
      this.onStatus = onStatus || function () {};
      this.closedOnPurpose = false;
      this.attempt = 0;
      this.connect();
    }
    connect() {
      const ws = new WebSocket(socketUrl(this.path));
      this.ws = ws;
      ws.onopen = () => { this.attempt = 0; this.onStatus("open"); };
      ws.onmessage = (event) => {
        let message;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        this.onMessage(message);
      };
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        this.onStatus("closed", event.code, event.reason);
        if (this.closedOnPurpose || FINAL_CLOSES.indexOf(event.code) >= 0) return;
        const delay = Math.min(8000, 500 * Math.pow(2, this.attempt++));
        setTimeout(() => { if (!this.closedOnPurpose) this.connect(); }, delay);
      };
    }
    send(message) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify(message));
        return true;
      }
      return false;
    }
    close() {
      this.closedOnPurpose = true;
      if (this.ws) this.ws.close(1000);
    }
  }

  function gathered(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === "complete") {
          pc.removeEventListener("icegatheringstatechange", done);
          resolve();
        }
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, timeoutMs || 4000);
    });
  }

  async function offer(pc, options) {
    const description = await pc.createOffer(options || {});
    await pc.setLocalDescription(description);
    await gathered(pc, 4000);
    return pc.localDescription.sdp;
  }

  /* VP8 first, then H264 (constrained baseline where offered), so both legs can meet. */
  function preferCodecs(transceiver) {
    if (!window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities || !transceiver.setCodecPreferences) return;
    const caps = RTCRtpReceiver.getCapabilities("video");
    if (!caps) return;
    const rank = (c) => {
      const mime = c.mimeType.toLowerCase();
      if (mime === "video/vp8") return 0;
      if (mime === "video/h264") return (c.sdpFmtpLine || "").includes("42e01f") ? 1 : 2;
      if (mime === "video/rtx" || mime === "video/red" || mime === "video/ulpfec") return 3;
      return 4;
    };
    const codecs = caps.codecs.filter((c) => rank(c) < 4).sort((a, b) => rank(a) - rank(b));
    try { transceiver.setCodecPreferences(codecs); } catch (e) { /* older browsers */ }
  }

  /* One more audio and video slot that only receives: the box fills it with a guest's
     media (or, for a guest, the officer's) without renegotiating. Returns the slot. */
  function extraSlot(pc) {
    const audio = pc.addTransceiver("audio", { direction: "recvonly" });
    const video = pc.addTransceiver("video", { direction: "recvonly" });
    preferCodecs(video);
    return { audio: audio, video: video, stream: new MediaStream() };
  }

  /* Show `stream` (or nothing: null) in a video or audio element. A media element given
     a stream before the page's load event holds that event back until the stream shows
     a frame (HTML's "delaying-the-load-event flag"): a remote stream with no video yet,
     or an officer whose camera is off, kept a phone's page "loading" for the whole call.
     So a stream is put in once the page has loaded; `attached` says what is, or will be,
     shown. */
  function attach(element, stream) {
    element.evrStream = stream;
    if (document.readyState === "complete") {
      element.srcObject = stream;
    } else if (!element.evrWaitsForLoad) {
      element.evrWaitsForLoad = true;
      window.addEventListener("load", () => { element.srcObject = element.evrStream; }, { once: true });
    }
  }

  function attached(element) {
    return element.evrStream !== undefined ? element.evrStream : element.srcObject;
  }

  /* Receive-only slots for the guests, as many as may be on a call (the hello's
     guestSlots): the box fills them as guests arrive and empties them as they leave,
     so nobody is renegotiated. Returns their transceivers. */
  function guestSlots(pc, count) {
    const transceivers = [];
    for (let i = 0; i < count; i++) {
      const slot = extraSlot(pc);
      transceivers.push(slot.audio, slot.video);
    }
    return transceivers;
  }

  /* One tile per guest on the call. The box says which m-line carries whom (a "slots"
     message: mid → leg); each tile plays its guest's receivers. The page's own tile
     (`template`) serves the first guest, copies of it the others; `caption(leg)` names
     them. */
  class Tiles {
    constructor(pc, template, caption) {
      this.pc = pc;
      this.template = template;
      this.caption = caption;
      this.slots = {};
      this.tiles = {};
    }
    route(slots) {
      this.slots = slots || {};
      this.render();
    }
    render() {
      const byLeg = {};
      this.pc.getTransceivers().forEach((t) => {
        const leg = t.mid !== null ? this.slots[t.mid] : null;
        if (leg && leg.indexOf("guest-") === 0) (byLeg[leg] = byLeg[leg] || []).push(t.receiver.track);
      });
      Object.keys(this.tiles).forEach((leg) => { if (!byLeg[leg]) this.drop(leg); });
      Object.keys(byLeg).forEach((leg) => {
        const tile = this.tiles[leg] || (this.tiles[leg] = this.make(leg));
        const video = tile.querySelector("video");
        const tracks = byLeg[leg];
        const shown = attached(video);
        const playing = shown ? shown.getTracks() : [];
        if (playing.length !== tracks.length || tracks.some((t) => playing.indexOf(t) < 0)) {
          attach(video, new MediaStream(tracks));
        }
        tile.querySelector("figcaption").textContent = this.caption(leg);
        tile.hidden = false;
      });
    }
    make(leg) {
      let tile = this.template;
      if (Object.values(this.tiles).indexOf(this.template) >= 0) {
        tile = this.template.cloneNode(true);
        tile.removeAttribute("id");
        tile.querySelectorAll("[id]").forEach((e) => e.removeAttribute("id"));
        const tiles = Object.values(this.tiles);
        const last = tiles[tiles.length - 1] || this.template;
        last.after(tile);
      }
      tile.dataset.leg = leg;
      return tile;
    }
    drop(leg) {
      const tile = this.tiles[leg];
      delete this.tiles[leg];
      if (tile !== this.template) { tile.remove(); return; }
      tile.hidden = true;
      attach(tile.querySelector("video"), null);
      delete tile.dataset.leg;
    }
  }

  function formatDuration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = String(m).padStart(2, "0"), ss = String(r).padStart(2, "0");
    return h ? h + ":" + mm + ":" + ss : mm + ":" + ss;
  }

  function appendChat(list, who, text, mine) {
    const item = document.createElement("li");
    item.className = "chat__item chat__item--" + (mine ? "mine" : "theirs");
    const name = document.createElement("span");
    name.className = "chat__who";
    name.textContent = who;
    item.appendChild(name);
    item.appendChild(document.createTextNode(" " + text));
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
  }

  return { Signal, offer, gathered, preferCodecs, extraSlot, guestSlots, Tiles, formatDuration, appendChat, attach, attached };
})();
