/* Copy buttons: copy the target field's value to the clipboard. */
"use strict";

document.querySelectorAll("[data-copy-target]").forEach((button) => {
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copyTarget);
    const status = document.querySelector("[data-copy-status]");
    try {
      await navigator.clipboard.writeText(field.value);
      if (status) status.textContent = "Copied.";
    } catch (error) {
      field.select();
      if (status) status.textContent = "Select the link and copy it.";
    }
  });
});
