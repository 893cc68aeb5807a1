/* The caller reads the statement the officer typed, signs it with their typed name and
   either a drawn signature or a ticked confirmation that the typed name is their
   signature (for whoever cannot draw: WCAG 2.5.7), or asks for a change. Works during
   the call and for a while after it. */
"use strict";

(function () {
  const _ = window.evrGettext;
  const panel = document.getElementById("statement-panel");
  const root = document.getElementById("caller");
  if (!panel || !root) return;
  const base = "/v/" + encodeURIComponent(root.dataset.token) + "/statement";
  const $ = (id) => document.getElementById(id);
  const pad = $("signature-pad");
  const context = pad.getContext("2d");
  let current = null;
  let inked = false;
  let drawing = false;

  function say(text) { $("statement-status").textContent = text; }

  function render(statement) {
    current = statement;
    if (!statement) return;
    panel.hidden = false;
    const readable = statement.state === "sent" || statement.state === "signed";
    $("statement-body").hidden = !readable;
    if (!readable) {
      say(_("The officer is changing your statement. It will appear here again when it is ready."));
      return;
    }
    $("st-name").textContent = statement.witnessName;
    $("st-age").textContent = statement.witnessAge || _("Over 18");
    $("st-occupation").textContent = statement.witnessOccupation || "–";
    $("st-account").textContent = statement.account;
    $("st-declaration").textContent = statement.declaration;
    $("statement-sign").hidden = statement.state !== "sent";
    if (statement.state === "signed") {
      say(statement.signedBy === "typed"
        ? _("You signed this statement as %(name)s by typing your name. Thank you.", { name: statement.signedName })
        : _("You signed this statement as %(name)s. Thank you.", { name: statement.signedName }));
    } else {
      say(_("Please read your statement. If it is right, sign it; if not, ask for a change."));
    }
  }

  function point(event) {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
  }
  function clearPad() {
    context.clearRect(0, 0, pad.width, pad.height);
    inked = false;
  }
  context.lineWidth = 4;
  context.lineCap = "round";
  context.lineJoin = "round";
  context.strokeStyle = "#0b0c0c";
  pad.addEventListener("pointerdown", (event) => {
    drawing = true;
    pad.setPointerCapture(event.pointerId);
    const [x, y] = point(event);
    context.beginPath();
    context.moveTo(x, y);
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const [x, y] = point(event);
    context.lineTo(x, y);
    context.stroke();
    inked = true;
  });
  ["pointerup", "pointercancel", "pointerleave"].forEach((name) => pad.addEventListener(name, () => { drawing = false; }));

  async function post(path, body) {
    const response = await fetch(base + "/" + current.id + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": panel.dataset.csrf },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || _("the statement could not be sent; please try again"));
    return answer.statement;
  }

  function typed() { return $("sign-typed").checked; }
  function showWay() {
    $("signature-drawn").hidden = typed();
    $("signature-typed").hidden = !typed();
  }
  $("sign-drawn").addEventListener("change", showWay);
  $("sign-typed").addEventListener("change", showWay);
  showWay();

  $("signature-clear").addEventListener("click", clearPad);
  $("statement-sign-button").addEventListener("click", async () => {
    const name = $("signed-name").value.trim();
    if (!name) { say(_("Type your full name first.")); $("signed-name").focus(); return; }
    if (typed() && !$("typed-confirmed").checked) {
      say(_("Tick the box to confirm that your typed name is your signature."));
      $("typed-confirmed").focus();
      return;
    }
    if (!typed() && !inked) { say(_("Draw your signature in the box, or choose to sign by your typed name.")); return; }
    const body = typed()
      ? { name: name, typed: true, confirmed: true }
      : { name: name, signature: pad.toDataURL("image/png") };
    $("statement-sign-button").disabled = true;
    try {
      render(await post("/sign", body));
    } catch (error) {
      say(_("Not signed: %(reason)s", { reason: error.message }));
    } finally {
      $("statement-sign-button").disabled = false;
    }
  });
  $("statement-change-button").addEventListener("click", async () => {
    const text = $("change-text").value.trim();
    if (!text) { say(_("Say what should change first.")); return; }
    try {
      render(await post("/changes", { text: text }));
      $("change-text").value = "";
    } catch (error) {
      say(_("Not sent: %(reason)s", { reason: error.message }));
    }
  });
  window.addEventListener("evr:statement", (event) => render(event.detail));

  fetch(base, { credentials: "same-origin" })
    .then((response) => (response.ok ? response.json() : { statement: null }))
    .then((body) => render(body.statement))
    .catch(() => {});
})();
