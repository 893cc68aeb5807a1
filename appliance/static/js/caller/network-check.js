/* Before joining: can this phone reach the box's relay (TURN) or its STUN server?

   A throwaway connection with only a data channel gathers candidates against the ICE
   servers the call will use: a relay candidate means the TURN server answered and
   allocated, so video can get through even a firewall that opens nothing else; a
   server-reflexive one means STUN over UDP works. With neither in the time allowed, the
   caller is told, in plain words, what to try; joining is never held back by it. A box
   with no ICE servers (a force LAN) has nothing to try, and the check says nothing. */
"use strict";

(function () {
  /* The verdict: "ok" when a relay candidate came (or, with STUN alone, a
     server-reflexive one), "blocked" when none did in time, "" when there is nothing
     to try; and the candidate types gathered. */
  async function reach(iceServers, timeoutMs) {
    const urls = [].concat(...iceServers.map((s) => [].concat(s.urls)));
    const turn = urls.some((u) => /^turns?:/.test(u));
    const stun = urls.some((u) => /^stuns?:/.test(u));
    if (!turn && !stun) return { verdict: "", found: [] };
    let peer;
    try {
      peer = new RTCPeerConnection({ iceServers: iceServers });
    } catch (error) {
      return { verdict: "blocked", found: [] };
    }
    const found = new Set();
    const done = new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      peer.onicecandidate = (event) => {
        if (event.candidate) {
          found.add(event.candidate.type || (/ typ (\w+)/.exec(event.candidate.candidate) || [])[1]);
          if (found.has("relay") || (!turn && found.has("srflx"))) { clearTimeout(timer); resolve(); }
        } else {
          clearTimeout(timer);
          resolve();
        }
      };
    });
    peer.createDataChannel("check");
    try {
      await peer.setLocalDescription(await peer.createOffer());
      await done;
    } finally {
      peer.close();
    }
    const verdict = found.has("relay") || found.has("srflx") ? "ok" : "blocked";
    return { verdict: verdict, found: [...found] };
  }

  window.EVRNetworkCheck = { reach: reach };
})();
