/* Keeps a region of the page current: fetches the server's fragment every few seconds
   (the box's staff_refresh_seconds), except while something in it has been changed and
   not yet sent. */
"use strict";

(function () {
  const region = document.getElementById("live-region");
  if (!region) return;
  /* A choice made but not yet sent (a handler picked for Assign) is never thrown away. */
  function edited() {
    const changedSelect = Array.from(region.querySelectorAll("select")).some((select) => {
      const initial = Math.max(0, Array.from(select.options).findIndex((option) => option.defaultSelected));
      return select.options.length > 0 && select.selectedIndex !== initial;
    });
    const changedInput = Array.from(region.querySelectorAll("input[type=text], textarea")).some((field) => field.value !== field.defaultValue);
    return changedSelect || changedInput;
  }

  /* A keyboard user's place is kept: the control that had focus is found again in the
     new fragment (same tag, id, link, name, form and text) and focused without scrolling;
     an unchanged fragment replaces nothing. */
  function keyOf(element) {
    const form = element.closest("form");
    return [element.tagName, element.id, element.getAttribute("href"), element.getAttribute("name"),
      form ? form.getAttribute("action") : "", element.textContent.trim()].join("|");
  }
  let shown = null;

  async function refresh() {
    if (region.contains(document.activeElement) && document.activeElement.tagName === "SELECT") return;
    if (edited()) return;
    try {
      const response = await fetch(region.dataset.refresh, { credentials: "same-origin" });
      if (!response.ok) return;
      const html = await response.text();
      if (html === shown) return;
      const focused = region.contains(document.activeElement) ? keyOf(document.activeElement) : null;
      region.innerHTML = shown = html;
      const again = focused && Array.from(region.querySelectorAll("a, button, input, textarea, summary, [tabindex]"))
        .find((element) => keyOf(element) === focused);
      if (again) again.focus({ preventScroll: true });
    } catch (error) { /* keep what is shown; try again next time */ }
  }
  setInterval(refresh, 1000 * (Number(document.body.dataset.refreshSeconds) || 5));
})();
