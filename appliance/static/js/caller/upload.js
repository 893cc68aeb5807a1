/* Sends each chosen file in chunks that survive a dropped connection (docs/evidence.md,
 * "Uploads in chunks"). The file is hashed first (the whole file and each chunk, one
 * pass, with the vendored js-sha256: SubtleCrypto has no streaming digest), declared,
 * then sent a chunk at a time from the offset the box confirms, with retries and
 * backoff. Choosing the same file again after a reload resumes where the box stopped.
 * Without fetch or the hash library the plain form posts the files as before. */
"use strict";

const uploadForm = document.getElementById("upload-form");
const _ = window.evrGettext;
const RETRIES = 8;

function say(text) {
  const status = document.getElementById("upload-status");
  if (status) status.textContent = text;
}

function pause(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function hashFile(file, chunkBytes, onProgress) {
  const whole = sha256.create();
  const chunks = [];
  for (let at = 0; at < file.size; at += chunkBytes) {
    const bytes = new Uint8Array(await file.slice(at, at + chunkBytes).arrayBuffer());
    whole.update(bytes);
    chunks.push(sha256(bytes));
    onProgress(Math.min(at + chunkBytes, file.size));
  }
  return { sha256: whole.hex(), chunks };
}

async function call(url, options, csrf) {
  const headers = Object.assign({ "X-CSRF-Token": csrf }, options.headers || {});
  const response = await fetch(url, Object.assign({}, options, { headers, credentials: "same-origin" }));
  let body = {};
  try {
    body = await response.json();
  } catch (_) {
    body = {};
  }
  return { status: response.status, body };
}

/* Retries what a bad line causes (no answer, a 5xx, a cut-short chunk); a refusal that
 * says the file cannot be kept ends the file. */
async function withRetries(attempt) {
  let wait = 1000;
  for (let tries = 0; ; tries += 1) {
    let result;
    try {
      result = await attempt();
    } catch (error) {
      result = { status: 0, body: {} };
    }
    const retry = result.status === 0 || result.status >= 500 || result.status === 400 && result.body.reason === "chunk_short";
    if (!retry || tries >= RETRIES) return result;
    say(_("The connection dropped. Trying again…"));
    await pause(wait);
    wait = Math.min(wait * 2, 30000);
  }
}

async function sendFile(base, csrf, file, chunkBytes) {
  const label = file.name || _("your file");
  const digest = await hashFile(file, chunkBytes, (done) =>
    say(_("Preparing “%(name)s”: %(percent)s", { name: label, percent: Math.floor((100 * done) / file.size) + "%" })));
  const begun = await withRetries(() => call(`${base}/uploads`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: file.name, type: file.type, size: file.size, sha256: digest.sha256 }),
  }, csrf));
  if (begun.status !== 200) return begun;
  const session = begun.body;
  let offset = session.offset;
  while (offset < file.size) {
    say(_("Sending “%(name)s”: %(percent)s", { name: label, percent: Math.floor((100 * offset) / file.size) + "%" }));
    const index = Math.floor(offset / chunkBytes);
    const sent = await withRetries(() => call(`${base}/uploads/${session.id}`, {
      method: "PUT",
      headers: {
        "Content-Type": "application/octet-stream",
        "Upload-Offset": String(offset),
        "Upload-Chunk-SHA256": digest.chunks[index],
      },
      body: file.slice(offset, offset + chunkBytes),
    }, csrf));
    if (sent.status === 200) {
      if (sent.body.done) return sent;
      offset = sent.body.offset;
    } else if (sent.status === 409 || sent.status === 422) {
      const status = await withRetries(() => call(`${base}/uploads/${session.id}`, { method: "GET" }, csrf));
      if (status.status !== 200) return status;
      offset = status.body.offset; /* resume from what the box confirmed */
    } else {
      return sent;
    }
  }
  return { status: 200, body: { done: true } };
}

if (uploadForm && window.fetch && window.sha256 && window.Blob && Blob.prototype.slice) {
  uploadForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("files");
    const button = uploadForm.querySelector("button[type=submit]");
    const csrf = uploadForm.querySelector("input[name=csrf_token]").value;
    const base = uploadForm.getAttribute("action").replace(/\/upload$/, "");
    const chunkBytes = Number(uploadForm.dataset.chunkBytes) || 1048576;
    if (!input.files.length) {
      say(_("Choose at least one photo or video."));
      return;
    }
    if (button) button.disabled = true;
    const kept = [];
    for (const file of input.files) {
      const result = await sendFile(base, csrf, file, chunkBytes);
      if (result.status !== 200) {
        say(result.body.error || _("The file could not be sent. Check your signal and press Send again: it carries on from where it stopped."));
        if (button) button.disabled = false;
        return;
      }
      kept.push(file.name);
      if (result.body.spent) {
        window.location.reload();
        return;
      }
    }
    input.value = "";
    if (button) button.disabled = false;
    say(_("Received: %(names)s. You can send more, or press Finished.", { names: kept.join(", ") }));
  });
}
