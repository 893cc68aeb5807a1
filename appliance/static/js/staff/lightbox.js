/* The console's snapshot viewer: a modal dialog with zoom and pan, previous and next,
   a caption (saved on the snapshot's record, its picture untouched), and arrows and
   circles that the box draws onto a separate marked-up copy. Shapes are sent as numbers
   (fractions of the picture), never as a picture. Also keeps the strip and the Snapshots
   tab in step as snapshots arrive ("evr:snapshot" from console.js). */
"use strict";

(function () {
  const dialog = document.getElementById("lightbox");
  const root = document.getElementById("console");
  if (!dialog || !root) return;
  const $ = (id) => document.getElementById(id);
  const csrf = root.dataset.csrf;
  const callId = root.dataset.call;
  const SVG = "http://www.w3.org/2000/svg";
  const view = $("lightbox-view");
  const canvas = $("lightbox-canvas");
  const image = $("lightbox-image");
  const svg = $("lightbox-svg");

  let current = null;      // the gallery item shown
  let opener = null;       // what had focus before, to return it
  let scale = 1, tx = 0, ty = 0;
  let shapes = [];          // {kind, from: [x, y], to: [x, y]} in picture pixels
  let drag = null;

  const items = () => Array.from(document.querySelectorAll("#gallery li[data-snapshot]"));
  const mode = () => (dialog.querySelector("input[name=lightbox-mode]:checked") || {}).value || "pan";

  function setStatus(text) { $("lightbox-status").textContent = text; }

  /* -- the lists: a new snapshot, a marked-up copy after its original ------------------ */
  function originals() { return items().filter((li) => !li.dataset.original).length; }

  function makeItems(info) {
    const label = info.label || ("Snapshot " + (originals() + 1));
    const item = document.createElement("li");
    item.dataset.snapshot = String(info.id);
    item.dataset.url = info.url;
    item.dataset.sha256 = info.sha256;
    item.dataset.label = label;
    item.dataset.caption = info.caption || "";
    if (info.original) { item.dataset.original = String(info.original); item.className = "gallery__copy"; }
    const link = document.createElement("a");
    link.href = info.url; link.target = "_blank"; link.rel = "noopener";
    link.dataset.openSnapshot = String(info.id);
    const img = document.createElement("img");
    img.src = info.url;
    img.alt = label + ", " + info.width + "×" + info.height;
    link.appendChild(img);
    const name = document.createElement("span");
    name.className = "gallery__label"; name.textContent = label;
    const caption = document.createElement("span");
    caption.className = "gallery__caption"; caption.dataset.captionText = ""; caption.textContent = info.caption || "";
    const hash = document.createElement("span");
    hash.className = "hint"; hash.textContent = "SHA-256 " + info.sha256.slice(0, 12) + "…";
    item.append(link, " ", name, " ", caption, " ", hash);
    const thumb = document.createElement("li");
    thumb.dataset.snapshot = String(info.id);
    const thumbLink = link.cloneNode(false);
    const thumbImage = document.createElement("img");
    thumbImage.src = info.url; thumbImage.alt = label;
    thumbLink.appendChild(thumbImage);
    thumb.appendChild(thumbLink);
    return { item: item, thumb: thumb };
  }

  function insertAfterFamily(list, node, originalId) {
    const family = Array.from(list.querySelectorAll("li[data-snapshot]"));
    let after = null;
    family.forEach((li) => {
      if (li.dataset.snapshot === originalId || li.dataset.original === originalId || (after && li.dataset.original === after.dataset.snapshot)) after = li;
    });
    if (after) after.after(node); else list.appendChild(node);
  }

  function add(info) {
    const made = makeItems(info);
    if (info.original) {
      insertAfterFamily($("gallery"), made.item, String(info.original));
      const thumbOf = $("strip").querySelector('li[data-snapshot="' + info.original + '"]');
      if (thumbOf) thumbOf.after(made.thumb); else $("strip").appendChild(made.thumb);
    } else {
      $("gallery").appendChild(made.item);
      $("strip").appendChild(made.thumb);
    }
    $("snapshot-count").textContent = String(items().length);
    return made.item;
  }
  window.addEventListener("evr:snapshot", (event) => add(event.detail));

  /* -- zoom and pan -------------------------------------------------------------------- */
  function place() {
    canvas.style.transform = "translate(" + tx + "px, " + ty + "px) scale(" + scale + ")";
    $("zoom-level").textContent = Math.round(scale * 100) + "%";
  }

  function fit() {
    const w = image.naturalWidth || 1, h = image.naturalHeight || 1;
    scale = Math.min(view.clientWidth / w, view.clientHeight / h);
    tx = (view.clientWidth - w * scale) / 2;
    ty = (view.clientHeight - h * scale) / 2;
    place();
  }

  function zoom(factor, cx, cy) {
    const x = cx === undefined ? view.clientWidth / 2 : cx;
    const y = cy === undefined ? view.clientHeight / 2 : cy;
    const next = Math.min(8, Math.max(0.05, scale * factor));
    tx = x - (x - tx) * (next / scale);
    ty = y - (y - ty) * (next / scale);
    scale = next;
    place();
  }

  function toPicture(event) {
    const box = view.getBoundingClientRect();
    const x = (event.clientX - box.left - tx) / scale;
    const y = (event.clientY - box.top - ty) / scale;
    return [Math.min(Math.max(x, 0), image.naturalWidth), Math.min(Math.max(y, 0), image.naturalHeight)];
  }

  /* -- drawing ------------------------------------------------------------------------- */
  function stroke() { return Math.max(3, Math.round(Math.min(image.naturalWidth, image.naturalHeight) / 140)); }

  function el(name, attrs) {
    const node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach((key) => node.setAttribute(key, attrs[key]));
    return node;
  }

  function drawShape(shape) {
    const group = el("g", {});
    const [x0, y0] = shape.from, [x1, y1] = shape.to;
    const w = stroke();
    [["#000", w * 2], ["#ffdd00", w]].forEach(([colour, width]) => {
      if (shape.kind === "circle") {
        const r = Math.max(Math.hypot(x1 - x0, y1 - y0), w * 2);
        group.appendChild(el("circle", { cx: x0, cy: y0, r: r, fill: "none", stroke: colour, "stroke-width": width }));
      } else {
        const angle = Math.atan2(y1 - y0, x1 - x0), head = w * 5 + (width - w), wing = 28 * Math.PI / 180;
        group.appendChild(el("line", { x1: x0, y1: y0, x2: x1, y2: y1, stroke: colour, "stroke-width": width }));
        const points = [[x1, y1],
          [x1 - head * Math.cos(angle - wing), y1 - head * Math.sin(angle - wing)],
          [x1 - head * Math.cos(angle + wing), y1 - head * Math.sin(angle + wing)]];
        group.appendChild(el("polygon", { points: points.map((p) => p.join(",")).join(" "), fill: colour }));
      }
    });
    return group;
  }

  function redraw(extra) {
    svg.replaceChildren();
    shapes.concat(extra ? [extra] : []).forEach((shape) => svg.appendChild(drawShape(shape)));
    $("markup-undo").disabled = shapes.length === 0;
    $("markup-save").disabled = shapes.length === 0;
  }

  view.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    view.setPointerCapture(event.pointerId);
    drag = mode() === "pan"
      ? { pan: true, x: event.clientX, y: event.clientY, tx: tx, ty: ty }
      : { kind: mode(), from: toPicture(event), to: toPicture(event) };
  });
  view.addEventListener("pointermove", (event) => {
    if (!drag) return;
    if (drag.pan) {
      tx = drag.tx + event.clientX - drag.x;
      ty = drag.ty + event.clientY - drag.y;
      place();
    } else {
      drag.to = toPicture(event);
      redraw(drag);
    }
  });
  view.addEventListener("pointerup", () => {
    if (drag && !drag.pan && Math.hypot(drag.to[0] - drag.from[0], drag.to[1] - drag.from[1]) > 4 / scale) {
      shapes.push({ kind: drag.kind, from: drag.from, to: drag.to });
      setStatus(shapes.length + (shapes.length === 1 ? " shape" : " shapes") + " drawn, not saved yet.");
    }
    drag = null;
    redraw();
  });
  view.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = view.getBoundingClientRect();
    zoom(event.deltaY < 0 ? 1.2 : 1 / 1.2, event.clientX - box.left, event.clientY - box.top);
  }, { passive: false });

  /* -- showing one snapshot ------------------------------------------------------------ */
  function show(item) {
    current = item;
    shapes = [];
    redraw();
    const list = items();
    const index = list.indexOf(item);
    $("lightbox-title").textContent = item.dataset.label + " (" + (index + 1) + " of " + list.length + ")";
    $("lightbox-hash").textContent = "SHA-256 " + item.dataset.sha256 +
      (item.dataset.original ? " · a marked-up copy; the original is kept as taken" : "");
    $("lightbox-caption").value = item.dataset.caption || "";
    $("lightbox-prev").disabled = index <= 0;
    $("lightbox-next").disabled = index >= list.length - 1;
    image.alt = item.dataset.label + (item.dataset.caption ? ": " + item.dataset.caption : "");
    image.onload = () => {
      canvas.style.width = image.naturalWidth + "px";
      canvas.style.height = image.naturalHeight + "px";
      svg.setAttribute("viewBox", "0 0 " + image.naturalWidth + " " + image.naturalHeight);
      fit();
    };
    image.src = item.dataset.url;
    if (image.complete && image.naturalWidth) image.onload();  // the same picture again
  }

  function open(id) {
    const item = items().find((li) => li.dataset.snapshot === String(id));
    if (!item) return;
    opener = document.activeElement;
    setStatus("");
    if (!dialog.open) dialog.showModal();
    show(item);
  }

  function step(by) {
    const list = items();
    const next = list[list.indexOf(current) + by];
    if (next) { show(next); setStatus(""); }
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("[data-open-snapshot]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    open(link.dataset.openSnapshot);
  });

  dialog.addEventListener("close", () => {
    if (opener && document.contains(opener)) opener.focus();
  });
  $("lightbox-close").addEventListener("click", () => dialog.close());
  $("lightbox-prev").addEventListener("click", () => step(-1));
  $("lightbox-next").addEventListener("click", () => step(1));
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(1 / 1.25));
  $("zoom-fit").addEventListener("click", fit);
  $("markup-undo").addEventListener("click", () => { shapes.pop(); redraw(); });

  /* On the whole page while the viewer is open (focus may be on the page itself after a
     button it held was disabled); console.js leaves its own keys alone meanwhile. */
  document.addEventListener("keydown", (event) => {
    if (!dialog.open || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("input[type=text]")) return;
    const keys = { ArrowLeft: () => step(-1), ArrowRight: () => step(1), "+": () => zoom(1.25), "=": () => zoom(1.25), "-": () => zoom(1 / 1.25), "0": fit };
    if (keys[event.key]) { event.preventDefault(); keys[event.key](); }
  });

  /* -- saving -------------------------------------------------------------------------- */
  async function send(url, body, type) {
    const response = await fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": type },
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || ("the box answered " + response.status));
    return answer;
  }

  $("caption-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const item = current;
    try {
      const answer = await send("/calls/" + callId + "/snapshots/" + item.dataset.snapshot + "/caption",
        new URLSearchParams({ caption: $("lightbox-caption").value }), "application/x-www-form-urlencoded");
      item.dataset.caption = answer.caption;
      item.querySelector("[data-caption-text]").textContent = answer.caption;
      setStatus(answer.caption ? "Caption saved. The picture itself is unchanged." : "Caption removed.");
    } catch (error) {
      setStatus("Caption not saved: " + error.message);
    }
  });

  $("markup-save").addEventListener("click", async () => {
    const item = current;
    const w = image.naturalWidth, h = image.naturalHeight;
    const round = (v) => Math.round(v * 1e5) / 1e5;
    const body = JSON.stringify({
      caption: $("lightbox-caption").value,
      shapes: shapes.map((s) => ({ kind: s.kind, from: [round(s.from[0] / w), round(s.from[1] / h)], to: [round(s.to[0] / w), round(s.to[1] / h)] })),
    });
    $("markup-save").disabled = true;
    try {
      const answer = await send("/calls/" + callId + "/snapshots/" + item.dataset.snapshot + "/markup", body, "application/json");
      answer.label = item.dataset.label.replace(/, marked up$/, "") + ", marked up";
      const copy = add(answer);
      show(copy);
      view.focus();
      setStatus("Marked-up copy saved (SHA-256 " + answer.sha256.slice(0, 12) + "…). The original is kept as taken.");
    } catch (error) {
      $("markup-save").disabled = false;
      setStatus("Marked-up copy not saved: " + error.message);
    }
  });
})();
