/* Ask the phone for its position once, then post it with the page's form (and its
   CSRF token). Nothing is sent until the caller presses the button. */
"use strict";

const locationForm = document.getElementById("location-form");
const shareButton = document.getElementById("share-location");
const locationStatus = document.getElementById("location-status");

function say(text) {
  if (locationStatus) locationStatus.textContent = text;
}

if (locationForm && shareButton) {
  const _ = window.evrGettext;
  if (!("geolocation" in navigator)) {
    say(_("This phone's browser cannot share a location. Tell the officer where you are."));
    shareButton.disabled = true;
  } else {
    say(_("Press the button to share your location."));
    shareButton.addEventListener("click", () => {
      shareButton.disabled = true;
      say(_("Finding where you are…"));
      navigator.geolocation.getCurrentPosition(
        (position) => {
          document.getElementById("latitude").value = String(position.coords.latitude);
          document.getElementById("longitude").value = String(position.coords.longitude);
          document.getElementById("accuracy").value = String(position.coords.accuracy);
          say(_("Sending…"));
          locationForm.submit();
        },
        (error) => {
          shareButton.disabled = false;
          say(
            error.code === error.PERMISSION_DENIED
              ? _("Location was not allowed. Allow it for this page and try again, or tell the officer where you are.")
              : _("Your phone could not find where you are. Try again, or tell the officer where you are."),
          );
        },
        { enableHighAccuracy: true, timeout: 30000, maximumAge: 0 },
      );
    });
  }
}
