/* Keeps a region of the page current: fetches the server's fragment every five seconds,
   except while something in it has been changed and not yet sent. */
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

  async function refresh() {
    if (region.contains(document.activeElement) && document.activeElement.tagName === "SELECT") return;
    if (edited()) return;
    try {
      const response = await fetch(region.dataset.refresh, { credentials: "same-origin" });
      if (response.ok) region.innerHTML = await response.text();
    } catch (error) { /* keep what is shown; try again next time */ }
  }
  setInterval(refresh, 5000);
})();
