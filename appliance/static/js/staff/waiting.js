/* On every staff page: how many callers are waiting, in the menu and in the tab's title,
   so a handler on another page (or another tab) sees a caller arrive. A caller who joins
   a call of the handler's own incident (and, on the queue board and the waiting list, one
   nobody owns yet) also sounds a short chime and shows a desktop notification.

   The browser's permission for notifications is asked once, at the first click or key on
   a staff page after sign-in, never again whatever the answer: a handler who refuses
   gets the chime and the title only. Each waiting caller alerts once, however many pages
   or tabs are open (remembered in localStorage by call and the time they began to wait). */
"use strict";

(function () {
  const count = document.getElementById("waiting-count");
  if (!count) return;
  const title = document.title;
  const ASKED = "evr-notifications-asked";
  const ALERTED = "evr-waiting-alerted";
  const board = ["/board", "/calls"].indexOf(window.location.pathname) >= 0;
  let audio = null;

  function store(key, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(key);
      window.localStorage.setItem(key, value);
    } catch (error) { /* private mode: alert once per page instead */ }
    return null;
  }

  /* A user gesture: ask for notifications once, and let the page make a sound. */
  function onGesture() {
    document.removeEventListener("pointerdown", onGesture, true);
    document.removeEventListener("keydown", onGesture, true);
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      audio.resume();
    } catch (error) { audio = null; }
    if ("Notification" in window && Notification.permission === "default" && !store(ASKED)) {
      store(ASKED, "1");
      Notification.requestPermission().catch(() => null);
    }
  }
  document.addEventListener("pointerdown", onGesture, true);
  document.addEventListener("keydown", onGesture, true);

  /* Two short rising tones, quiet: a chime, not an alarm. */
  function chime() {
    if (!audio || audio.state !== "running") return false;
    [[660, 0], [880, 0.18]].forEach(([frequency, at]) => {
      const tone = audio.createOscillator();
      const level = audio.createGain();
      tone.frequency.value = frequency;
      level.gain.setValueAtTime(0.0001, audio.currentTime + at);
      level.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + at + 0.02);
      level.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + at + 0.3);
      tone.connect(level).connect(audio.destination);
      tone.start(audio.currentTime + at);
      tone.stop(audio.currentTime + at + 0.32);
    });
    return true;
  }

  function notify(row) {
    if (!("Notification" in window) || Notification.permission !== "granted") return false;
    const who = row.name || "A caller";
    const note = new Notification(who + " is waiting", {
      body: row.incident + " · " + row.category + (row.rvr ? " · RVR" : "") + (row.mine ? "" : " · not assigned"),
      tag: "evr-waiting-" + row.call,
    });
    note.onclick = () => { window.focus(); window.location.href = row.url; note.close(); };
    return true;
  }

  /* Tell the box which notification went out, for the answer-wait metric
     (evr_call_answer_wait_seconds); nothing else is kept. */
  function report(row, notification) {
    fetch("/calls/" + encodeURIComponent(row.call) + "/alerted", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": count.dataset.csrf || "" },
      body: JSON.stringify({ notification: notification }),
    }).catch(() => null);
  }

  function announce(rows) {
    const key = (row) => row.call + "@" + row.waitingSince;
    let alerted;
    try { alerted = JSON.parse(store(ALERTED) || "[]"); } catch (error) { alerted = []; }
    const seen = new Set(alerted);
    const fresh = rows.filter((row) => (row.mine || (board && row.unassigned)) && !seen.has(key(row)));
    // Only callers now waiting are remembered, so the list stays small.
    store(ALERTED, JSON.stringify(rows.map(key)));
    if (!fresh.length) return;
    const sounded = chime();
    fresh.forEach((row) => {
      if (notify(row)) report(row, "desktop");
      else if (sounded) report(row, "sound");
    });
  }

  async function refresh() {
    let data;
    try {
      const response = await fetch(count.dataset.source, { credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch (error) { return; }
    const waiting = data.waiting.length;
    count.textContent = String(waiting);
    count.hidden = waiting === 0;
    document.title = waiting ? "(" + waiting + " waiting) " + title : title;
    announce(data.waiting);
  }

  refresh();
  setInterval(refresh, 1000 * (Number(document.body.dataset.refreshSeconds) || 5));
})();
